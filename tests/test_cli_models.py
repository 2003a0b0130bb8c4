"""``panns-sed models`` end to end: a loopback server, a test catalogue, real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from model_server import ModelServer, catalogue_json, entry_for, make_checkpoint_bytes

from panns_core.cli import main
from panns_core.paths import models_dir

FILE = "Cnn6_mAP=0.343.pth"


@pytest.fixture(scope="session")
def ckpt(reference_dir: Path) -> bytes:
    return make_checkpoint_bytes(reference_dir / "state_dict_keys.json", "Cnn6", seed=0)


@pytest.fixture
def server(ckpt, tmp_path, monkeypatch):
    with ModelServer({FILE: ckpt}) as srv:
        path = catalogue_json(tmp_path / "catalogue.json", [entry_for(ckpt, FILE)],
                              default="Cnn6")
        monkeypatch.setenv("PANNS_ANNOTATOR_CATALOGUE", str(path))
        monkeypatch.setenv("PANNS_ANNOTATOR_MODEL_URL_BASE", srv.base_url)
        yield srv


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_empty_registry_lists_downloads_and_explains_the_default(server, capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0
    assert "No model installed." in out
    assert "Cnn6" in out and "mAP 0.343" in out
    code, _, err = run(capsys, "default")
    assert code == 1
    assert "`panns-sed models download Cnn6`" in err and "`panns-sed models import PATH`" in err


def test_download_list_info_default_remove(server, ckpt, capsys):
    code, out, err = run(capsys, "download", "cnn6")
    assert code == 0, err
    assert "Installed Cnn6" in out and "sha256 verified" in out
    assert "100%" in err  # the tqdm bar reached the end
    assert (models_dir() / FILE).read_bytes() == ckpt

    code, out, _ = run(capsys, "download", "Cnn6")
    assert code == 0 and "already installed" in out
    assert len(server.log) == 1

    code, out, _ = run(capsys, "list")
    assert "* Cnn6" in out and "catalogue" in out and "527 classes" in out
    assert "Available to download" not in out

    code, out, _ = run(capsys, "list", "--json")
    data = json.loads(out)
    assert data["default"] == "Cnn6" and data["available"] == []
    assert data["installed"][0]["size"] == len(ckpt)

    code, out, _ = run(capsys, "info", "CNN6", "--json", "--labels")
    info = json.loads(out)
    assert info["architecture"] == "Cnn6" and info["installed"] and info["default"]
    assert len(info["labels"]) == 527 and info["labels"][0] == "Speech"

    code, out, _ = run(capsys, "info", "Cnn6")
    assert "527 in all" in out and "origin:" in out

    code, out, _ = run(capsys, "default", "cnn6")
    assert code == 0 and "Default model: Cnn6" in out

    code, out, _ = run(capsys, "remove", "Cnn6")
    assert code == 0 and "Removed Cnn6" in out
    assert not (models_dir() / FILE).exists()
    code, out, _ = run(capsys, "list")
    assert "No model installed." in out


def test_info_of_a_model_not_yet_downloaded(server, capsys):
    code, out, _ = run(capsys, "info", "Cnn6")
    assert code == 0
    assert "installed:      False" in out
    assert "Cnn6_mAP%3D0.343.pth?download=1" in out


def test_errors_exit_1_with_a_message(server, capsys):
    code, _, err = run(capsys, "download", "resnet50")
    assert code == 1 and "not in the model catalogue" in err
    server.script = ["404"]
    code, _, err = run(capsys, "download", "Cnn6")
    assert code == 1 and "HTTP 404" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "remove", "Cnn6")
    assert code == 1 and "models download Cnn6" in err
    code, _, err = run(capsys, "import", "/no/such/file.pth")
    assert code == 1 and "No checkpoint file" in err


def test_import_then_make_it_the_default(server, reference_dir, tmp_path, capsys):
    data = make_checkpoint_bytes(reference_dir / "state_dict_keys.json", "Cnn6", seed=1)
    source = tmp_path / "field.pth"
    source.write_bytes(data)
    code, out, err = run(capsys, "import", str(source), "--name", "field-birds")
    assert code == 0, err
    assert "Imported field-birds: Cnn6, 527 classes, 32000 Hz" in out
    code, out, _ = run(capsys, "default", "FIELD-BIRDS")
    assert code == 0
    code, out, _ = run(capsys, "default")
    assert out.strip() == "field-birds"
    code, _, err = run(capsys, "import", str(source), "--name", "field-birds")
    assert code == 1 and "already installed" in err
