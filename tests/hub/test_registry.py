"""The model registry and model_source, with real downloads from a loopback server and
real checkpoint files."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from model_server import ModelServer, catalogue_json, entry_for, make_checkpoint_bytes

from panns_core.errors import CheckpointError, DownloadError, ModelNotFoundError, StoreError
from panns_core.hub.installed import ModelRegistry, get_model, install_download, list_models
from panns_core.hub.resolve import resolve_checkpoint, resolve_model_labels
from panns_core.labels import audioset_labels
from panns_core.paths import models_dir

FILE = "Cnn6_mAP=0.343.pth"
# Timeouts a busy machine never reaches (the request counts asserted do not depend on
# the load); the one test that needs a timeout to fire passes a short read timeout
# against a server stalling for minutes, so finishing proves it fired.
FAST = {"timeout": (10.0, 10.0), "backoff": 0.01, "retries": 2}


@pytest.fixture(scope="session")
def ckpt(reference_dir: Path) -> bytes:
    return make_checkpoint_bytes(reference_dir / "state_dict_keys.json", "Cnn6", seed=0)


@pytest.fixture(scope="session")
def other_ckpt(reference_dir: Path) -> bytes:
    return make_checkpoint_bytes(reference_dir / "state_dict_keys.json", "Cnn6", seed=1)


@pytest.fixture
def server(ckpt, tmp_path, monkeypatch):
    """Loopback server + a test catalogue (Cnn6 with its real hashes) wired in by env."""
    with ModelServer({FILE: ckpt, "Cnn6_copy.pth": ckpt}) as srv:
        path = catalogue_json(tmp_path / "catalogue.json", [
            entry_for(ckpt, FILE),
            entry_for(ckpt, "Cnn6_copy.pth", name="Cnn6-md5", sha256=False),
        ], default="Cnn6")
        monkeypatch.setenv("PANNS_ANNOTATOR_CATALOGUE", str(path))
        monkeypatch.setenv("PANNS_ANNOTATOR_MODEL_URL_BASE", srv.base_url)
        yield srv


def _files() -> list[str]:
    return sorted(p.name for p in models_dir().iterdir() if p.name != "registry.sqlite3")


def test_nothing_installed_says_how_to_get_the_default_model(monkeypatch):
    monkeypatch.delenv("PANNS_ANNOTATOR_CATALOGUE", raising=False)
    registry = ModelRegistry()
    assert registry.list_models() == []
    with pytest.raises(ModelNotFoundError) as info:
        registry.default_model()
    message = str(info.value)
    assert "`panns-sed models download Cnn14_DecisionLevelMax`" in message
    assert "`panns-sed models import PATH`" in message
    with pytest.raises(ModelNotFoundError, match="models download Cnn14_DecisionLevelMax"):
        resolve_checkpoint(None)
    assert not (models_dir(create=False) / "registry.sqlite3").exists()  # reading wrote nothing


def test_download_installs_and_registers_the_catalogue_model(server, ckpt):
    seen = []
    record = install_download("cnn6", progress=seen.append, **FAST)
    assert record.name == "Cnn6" and record.origin == "catalogue"
    assert record.architecture == "Cnn6" and record.framewise is False
    assert record.classes_num == 527 and list(record.labels) == audioset_labels().names
    assert record.sample_rate == 32000
    assert record.size == len(ckpt) and record.sha256 == hashlib.sha256(ckpt).hexdigest()
    assert record.path == models_dir() / FILE and record.path.read_bytes() == ckpt
    assert record.source.startswith(server.base_url) and "Cnn6_mAP%3D0.343.pth" in record.source
    assert record.metrics == {"audioset_mAP": 0.343}
    assert seen[-1].bytes_done == len(ckpt)
    # any spelling finds it, from a fresh registry object (it is persisted)
    for spelling in ("CNN6", "cnn6.audioset_32k", FILE):
        assert get_model(spelling) == record
    assert [m.name for m in list_models()] == ["Cnn6"]
    assert ModelRegistry().default_model() == record
    # installing again neither downloads nor touches the file
    assert install_download("Cnn6", **FAST) == record
    assert len(server.log) == 1


def test_md5_only_entry_is_verified_and_sha256_recorded(server, ckpt):
    record = install_download("cnn6-md5", **FAST)
    assert record.name == "Cnn6-md5"
    assert record.sha256 == hashlib.sha256(ckpt).hexdigest()
    assert (models_dir() / "Cnn6_copy.pth").read_bytes() == ckpt


def test_interrupted_download_resumes_and_installs(server, ckpt):
    server.script = ["drop", "stall"]
    server.stall_seconds = 60.0  # only the client's read timeout ends the stall
    record = install_download("Cnn6", **{**FAST, "timeout": (10.0, 1.0), "retries": 4})
    half = len(ckpt) // 2
    ranges = server.ranges()
    assert ranges[:3] == [None, f"bytes={half}-", f"bytes={half + (len(ckpt) - half) // 4}-"]
    # a busy machine may time out once more: each later request resumes further on
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    assert starts == sorted(set(starts))
    assert server.stalls_outlived == 0  # the client's timeout ended the stall
    assert record.path.read_bytes() == ckpt
    assert _files() == [FILE]


def test_wrong_bytes_install_nothing(server):
    server.script = ["wrong"]
    with pytest.raises(DownloadError, match=r"expected .* got"):
        install_download("Cnn6", **FAST)
    assert list_models() == []
    assert _files() == []


def test_remove_deletes_the_file_and_clears_the_default(server):
    registry = ModelRegistry()
    record = registry.install_download("Cnn6", **FAST)
    registry.set_default("cnn6")
    assert registry.default_name() == "Cnn6"
    removed = registry.remove("CNN6")
    assert removed.name == "Cnn6" and not record.path.exists()
    assert registry.list_models() == [] and registry.default_name() is None
    with pytest.raises(ModelNotFoundError, match="`panns-sed models download Cnn6`"):
        registry.get_model("Cnn6")
    with pytest.raises(ModelNotFoundError, match="download Cnn6"):
        registry.set_default("Cnn6")


def test_resolving_a_catalogue_model_that_is_not_installed(server):
    with pytest.raises(ModelNotFoundError, match=r"Cnn6 is not installed.*models download Cnn6"):
        resolve_checkpoint("cnn6")
    with pytest.raises(ModelNotFoundError, match="models import PATH"):
        resolve_checkpoint("no-such-model")
    with pytest.raises(ModelNotFoundError, match="No checkpoint file at"):
        resolve_checkpoint("missing/model.pth")


def test_labels_of_an_installed_model_come_from_the_registry(server):
    install_download("Cnn6", **FAST)
    assert resolve_model_labels("cnn6") == audioset_labels().names
    assert resolve_model_labels(None) == audioset_labels().names


def test_damaged_registry_gives_a_store_error(server):
    models_dir().joinpath("registry.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="damaged"):
        ModelRegistry().list_models()


def test_registry_rejects_a_newer_schema(server):
    with sqlite3.connect(models_dir() / "registry.sqlite3") as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="newer version"):
        ModelRegistry().list_models()


# -- import and registration (validated by panns_core.hub.checkpoints.load_checkpoint) --------


def test_import_copies_a_valid_checkpoint_with_metadata(server, other_ckpt, tmp_path):
    source = tmp_path / "my_birds.pth"
    source.write_bytes(other_ckpt)
    record = ModelRegistry().import_checkpoint(source)
    assert record.name == "my_birds" and record.origin == "import"
    assert record.architecture == "Cnn6" and record.classes_num == 527
    assert record.sample_rate == 32000 and record.framewise is False
    assert record.sha256 == hashlib.sha256(other_ckpt).hexdigest()
    assert record.path.parent == models_dir() and record.path.read_bytes() == other_ckpt
    assert source.read_bytes() == other_ckpt  # the original is left where it was
    assert record.source == str(source)
    loaded = resolve_checkpoint("MY_BIRDS")
    assert loaded.architecture == "Cnn6" and len(loaded.labels) == 527
    assert resolve_checkpoint(source).architecture == "Cnn6"  # a plain path works too
    with pytest.raises(StoreError, match="already installed"):
        ModelRegistry().import_checkpoint(source)
    assert ModelRegistry().import_checkpoint(source, name="birds 2").name == "birds 2"


def test_importing_the_released_file_registers_the_catalogue_model(server, ckpt, tmp_path):
    source = tmp_path / FILE
    source.write_bytes(ckpt)
    record = ModelRegistry().import_checkpoint(source)
    assert record.name == "Cnn6" and record.origin == "catalogue"
    assert record.catalogue_name == "Cnn6"
    assert install_download("Cnn6", **FAST) == record  # counts as installed: no download
    assert server.log == []


def test_a_catalogue_name_is_not_given_to_a_different_file(server, other_ckpt, tmp_path):
    source = tmp_path / FILE  # named like the release, but other weights
    source.write_bytes(other_ckpt)
    with pytest.raises(StoreError, match="belongs to the catalogue model Cnn6"):
        ModelRegistry().import_checkpoint(source)
    assert list_models() == []


def test_import_rejects_a_file_that_is_not_a_checkpoint(server, tmp_path):
    source = tmp_path / "notes.pth"
    source.write_text("not a checkpoint at all\n")
    with pytest.raises(CheckpointError) as info:
        ModelRegistry().import_checkpoint(source)
    assert "notes.pth" in str(info.value)
    assert list_models() == [] and not models_dir(create=False).joinpath("notes.pth").exists()
    with pytest.raises(CheckpointError, match="No checkpoint file"):
        ModelRegistry().import_checkpoint(tmp_path / "absent.pth")


class _Planted:
    """Pickles as a call to Path.touch: runs only if a loader unpickles unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_import_refuses_a_pickle_that_weights_only_rejects(server, ckpt, tmp_path):
    import io

    import torch

    state = torch.load(io.BytesIO(ckpt), weights_only=True)
    marker = tmp_path / "code-ran"
    source = tmp_path / "planted.pth"
    torch.save({**state, "extra": _Planted(marker)}, source)
    with pytest.raises(CheckpointError) as info:
        ModelRegistry().import_checkpoint(source)
    assert "planted.pth" in str(info.value)
    assert not marker.exists()
    assert list_models() == []


def test_register_fine_tuned_checkpoint_with_parent_and_metrics(server, ckpt, other_ckpt,
                                                               tmp_path):
    registry = ModelRegistry()
    registry.install_download("Cnn6", **FAST)
    out = tmp_path / "run1" / "best.pth"
    out.parent.mkdir()
    out.write_bytes(other_ckpt)
    record = registry.register_checkpoint(out, "birds-ft", parent="Cnn6",
                                          metrics={"event_f1": 0.61})
    assert record.origin == "fine-tune" and record.parent == "Cnn6"
    assert record.metrics == {"event_f1": 0.61}
    assert out.exists() and record.path.read_bytes() == other_ckpt
    with pytest.raises(StoreError, match="already installed"):
        registry.register_checkpoint(out, "BIRDS-FT")
    again = registry.register_checkpoint(out, "birds-ft", parent="Cnn6",
                                         metrics={"event_f1": 0.7}, replace=True, move=True)
    assert again.metrics == {"event_f1": 0.7} and not out.exists()
    assert [m.name for m in registry.list_models()] == ["Cnn6", "birds-ft"]
    # the catalogue default stays the default until the user picks another
    assert registry.default_model().name == "Cnn6"
    registry.set_default("Birds-FT")
    assert registry.default_model().name == "birds-ft"
