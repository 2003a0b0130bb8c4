"""Project-level guarantees: CLI basics, shipped data, and the core/GUI boundary."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from panns_core import __version__
from panns_core.cli import main
from panns_core.data import resource_path
from panns_core.labels import audioset_labels

ROOT = Path(__file__).resolve().parent.parent
LABELS_SHA256 = "cdd1049833c4b86127c2773ac0d14a2754b6a6d0d1798002ed5c66e699708429"


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "labels" in capsys.readouterr().out


def test_console_script_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "panns_core", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"panns-sed {__version__}"


def test_shipped_labels_are_the_reference_file() -> None:
    path = resource_path("class_labels_indices.csv")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LABELS_SHA256
    labels = audioset_labels()
    assert len(labels) == 527
    assert labels.by_index(0).name == "Speech"
    assert labels.by_name("dog").index == 74
    assert labels.by_mid("/m/0bt9lr").name == "Dog"


def test_labels_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["labels", "--grep", "bark"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "Bark" in [line.split("\t")[2] for line in lines]


def test_unknown_label_message_says_what_to_do() -> None:
    from panns_core.errors import PannsError

    with pytest.raises(PannsError, match="panns-sed labels"):
        audioset_labels().by_name("no such sound")


CORE_IMPORT_CHECK = r"""
import importlib, pkgutil, sys

class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"PySide6", "pyqtgraph", "shiboken6", "app"}:
            raise ImportError(f"panns_core imported {name}")
        return None

sys.meta_path.insert(0, Block())
import panns_core.cli
assert "torch" not in sys.modules, "importing the CLI must not import torch"
panns_core.cli.build_parser()
assert "torch" not in sys.modules, "building the CLI parser must not import torch"
import panns_core
for info in pkgutil.walk_packages(panns_core.__path__, "panns_core."):
    if info.name.endswith("__main__"):
        continue
    importlib.import_module(info.name)
print("ok")
"""


@pytest.mark.slow
def test_core_never_imports_qt_and_cli_is_light() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CORE_IMPORT_CHECK], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("ok")


@pytest.mark.slow
def test_wheel_ships_resources(tmp_path: Path) -> None:
    """A non-editable install must find panns_core/data/: the wheel carries them."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("panns_annotator-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "panns_core/data/class_labels_indices.csv" in names
    assert "panns_core/data/checkpoints.json" in names
    assert "panns_core/data/demo.flac" in names
    assert "panns_core/data/icons/panns-annotator.svg" in names
    assert "app/__init__.py" in names or not (ROOT / "app" / "__init__.py").exists()
    entry_points = zipfile.ZipFile(wheel).read(
        next(n for n in names if n.endswith("entry_points.txt"))
    ).decode()
    assert "panns-sed = panns_core.cli:main" in entry_points
    assert "panns-annotator = app.main:main" in entry_points
