"""Shared test setup.

Before anything imports sounddevice or Qt: offscreen Qt, PortAudio through ALSA's
file plugin (tests/fixtures/asoundrc), a private application home so no test touches
the user's data, and few torch threads (the CI machine has two cores).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["ALSA_CONFIG_PATH"] = f"/usr/share/alsa/alsa.conf:{FIXTURES / 'asoundrc'}"
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def app_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own PANNS_ANNOTATOR_HOME (models, caches, settings)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PANNS_ANNOTATOR_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    return FIXTURES / "reference"


@pytest.fixture(scope="session")
def soundscape_search(tmp_path_factory: pytest.TempPathFactory):
    """A TinySED trained on part of the real soundscapes and a project of the rest with its
    search index built (once per session; tests/soundscape_model.py). Skips without the
    corpus."""
    import soundscape_model

    if not soundscape_model.available():
        pytest.skip(f"the soundscape corpus is not at {soundscape_model.CORPUS}")
    folder = tmp_path_factory.mktemp("soundscape-search")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PANNS_ANNOTATOR_HOME", str(folder / "home"))
        return soundscape_model.build(folder)


@pytest.fixture
def two_threads():
    """Torch at 2 threads for the test, restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny():
    """A Detector of the tiny SED network with deterministic weights (detect_helpers)."""
    from detect_helpers import TINY_LABELS, deterministic_model, tiny_sed

    from panns_core.hub.detector import Detector

    with tiny_sed() as arch:
        yield Detector.from_module(deterministic_model(arch, len(TINY_LABELS)), TINY_LABELS)
