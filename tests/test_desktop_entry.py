"""packaging/install-desktop-entry.sh installs the desktop entry per user and removes it."""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "packaging" / "install-desktop-entry.sh"

pytestmark = pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")


def run(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XDG_DATA_HOME"}
    env["HOME"] = str(home)
    return subprocess.run(["sh", str(SCRIPT), *args], env=env, capture_output=True,
                          text=True, timeout=60, check=True)


def test_install_then_uninstall_for_one_user(tmp_path: Path) -> None:
    share = tmp_path / ".local" / "share"
    entry = share / "applications" / "panns-annotator.desktop"
    icon = share / "icons" / "hicolor" / "scalable" / "apps" / "panns-annotator.svg"
    mime = share / "mime" / "packages" / "panns-annotator.xml"

    done = run(tmp_path, "--exec", "/opt/panns annotator/panns-annotator")
    assert str(entry) in done.stdout
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read(entry, encoding="utf-8")
    section = parser["Desktop Entry"]
    assert section["Exec"] == '"/opt/panns annotator/panns-annotator" %f'
    assert section["Icon"] == "panns-annotator"
    types = section["MimeType"].rstrip(";").split(";")
    assert "application/x-panns-project" in types
    assert {"audio/x-wav", "audio/flac", "audio/mpeg", "audio/ogg"} <= set(types)
    assert icon.read_bytes() == (ROOT / "panns_core/data/icons/panns-annotator.svg").read_bytes()
    xml = mime.read_text()
    assert 'type="application/x-panns-project"' in xml and 'pattern="*.panns"' in xml
    if shutil.which("update-mime-database"):  # the database knows the new type
        assert (share / "mime" / "application" / "x-panns-project.xml").is_file()

    run(tmp_path, "--uninstall")
    for path in (entry, icon, mime):
        assert not path.exists(), path
    assert not (share / "mime" / "application" / "x-panns-project.xml").exists()


def test_default_command_is_panns_annotator_from_path(tmp_path: Path) -> None:
    run(tmp_path)
    text = (tmp_path / ".local/share/applications/panns-annotator.desktop").read_text()
    assert 'Exec="panns-annotator" %f' in text
    run(tmp_path, "--uninstall")
