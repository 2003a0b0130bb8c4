"""The application around the views: start-up, first start, command-line files, the model
manager's download (progress, cancel, resume), the log-mel view against the model's own
front end, the Wavegram hint, and crash safety of edits."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from model_server import ModelServer, catalogue_json, entry_for, make_checkpoint_bytes

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


def _run_child(code: str, home: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PANNS_ANNOTATOR_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)


def test_window_opens_command_line_files_before_torch(tmp_path, demo_path):
    result = _run_child(f"""
        import sys
        from PySide6.QtCore import QEvent, QObject
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from app.main import build_parser, create_window

        class AtShow(QObject):  # was torch loaded when the window was first shown?
            torch = None
            def eventFilter(self, obj, event):
                if event.type() == QEvent.Type.Show and AtShow.torch is None:
                    AtShow.torch = "torch" in sys.modules
                return False

        spy = AtShow()
        app.installEventFilter(spy)
        args = build_parser().parse_args([{str(demo_path)!r}])
        window = create_window(args.files, args.project, args.demo)
        app.processEvents()
        print(window.isVisible(), window.document.recording.name, AtShow.torch)
        window.close()
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "demo.flac", "False"]


def test_first_start_opens_the_demo_once(qtbot, tmp_path):
    from app import settings
    from app.main import create_window

    assert settings.first_start()
    window = create_window(project=str(tmp_path / "p.panns"))
    qtbot.addWidget(window)
    assert window.document.recording.name == "demo.flac"
    window.document.set_recording(None)  # left with no recording open (else it reopens)
    window.close()
    assert not settings.first_start()
    again = create_window(project=str(tmp_path / "p.panns"))
    qtbot.addWidget(again)
    assert again.document.recording is None  # not forced on the user a second time
    assert [r.name for r in again.document.recordings] == ["demo.flac"]
    again.close()


def test_edits_survive_a_crash(tmp_path, demo_path):
    project = tmp_path / "crash.panns"
    result = _run_child(f"""
        import os
        from app.model import Document
        doc = Document()
        doc.open_project({str(project)!r})
        doc.open_file({str(demo_path)!r})
        first = doc.add_event(1.0, 2.0, "Dog")
        doc.add_event(3.0, 4.5, "Speech")
        doc.relabel([first], "Bark")
        os._exit(3)  # no close, no flush: a crash
    """, tmp_path)
    assert result.returncode == 3, result.stderr
    from panns_core.annotations.store import ProjectStore

    with ProjectStore(project) as store:
        events = store.events()
    assert sorted(events["label"]) == ["Bark", "Speech"]
    assert events.set_index("label").loc["Speech", "offset"] == 4.5


@pytest.fixture
def model_server(reference_dir, tmp_path, monkeypatch):
    data = make_checkpoint_bytes(reference_dir / "state_dict_keys.json", "Cnn6", seed=0)
    file = "Cnn6_mAP=0.343.pth"
    with ModelServer({file: data}) as server:
        path = catalogue_json(tmp_path / "catalogue.json", [entry_for(data, file)],
                              default="Cnn6")
        monkeypatch.setenv("PANNS_ANNOTATOR_CATALOGUE", str(path))
        monkeypatch.setenv("PANNS_ANNOTATOR_MODEL_URL_BASE", server.base_url)
        yield server


def test_model_manager_download_progress_cancel_resume(make_main_window, qtbot,
                                                       model_server, app_home):
    from app.dialogs.model_manager import ModelManagerDialog

    window = make_main_window()
    dialog = ModelManagerDialog(window)
    dialog.quiet_errors = True
    dialog.models_changed.connect(window.panels["detection"].refresh_models)
    qtbot.addWidget(dialog)
    assert [row["name"] for row in dialog.rows()] == ["Cnn6"]
    dialog.select_name("Cnn6")
    assert dialog.download_button.isEnabled()

    progress = []
    dialog._progress.connect(lambda fraction, _text: progress.append(fraction))
    model_server.script = ["stall"]  # a quarter of the file, then silence
    worker = dialog.download("Cnn6")
    qtbot.waitUntil(lambda: bool(progress) and progress[-1] > 0, timeout=30000)
    assert dialog.cancel_button.isEnabled() and not dialog.download_button.isEnabled()
    dialog.cancel()
    model_server.release.set()
    qtbot.waitUntil(lambda: dialog.worker is None, timeout=60000)
    assert worker.is_cancelled
    assert "cancelled" in dialog.info.text()
    assert not dialog.rows()[0]["installed"]
    # the cancelled transfer kept what it received (at most the quarter the server sent)
    (part,) = app_home.rglob("*.part")
    kept = part.stat().st_size
    data = next(iter(model_server.files.values()))
    assert 0 < kept <= len(data) // 4

    model_server.release.clear()
    dialog.select_name("Cnn6")
    dialog.download_selected()
    qtbot.waitUntil(lambda: dialog.worker is None, timeout=60000)
    assert dialog.info.text() == "Installed Cnn6."
    assert dialog.rows()[0]["installed"]
    # the second request resumed where the cancelled one stopped, and the file is whole
    assert model_server.ranges()[-1] == f"bytes={kept}-"
    assert not part.exists()
    from panns_core.hub.installed import get_registry

    assert get_registry().get_model("Cnn6").path.read_bytes() == data
    assert window.panels["detection"].model_combo.findData("Cnn6") >= 0
    dialog.close()


def test_spectrogram_tiles_are_the_models_own_logmel(make_main_window, qtbot, demo_path):
    import torch

    from panns_core.audio import load_audio
    from panns_core.display.tiles import TILE_FRAMES
    from panns_core.models import FEATURES_32K, build_model

    window = make_main_window()
    window.open_files([demo_path])
    view = window.spectrogram
    qtbot.waitUntil(lambda: len(view.visible_tiles()) >= 2, timeout=60000)
    model = build_model("Cnn14_DecisionLevelMax", feature_config=FEATURES_32K).eval()
    x, _ = load_audio(demo_path, sample_rate=32000)
    with torch.inference_mode():
        whole = model.logmel(torch.from_numpy(x)[None])[0].numpy()
    for tile in view.visible_tiles():
        image = view.cache.get(view.tile_key(tile))
        expected = whole[tile * TILE_FRAMES:(tile + 1) * TILE_FRAMES]
        assert image.shape == expected.shape
        np.testing.assert_allclose(image, expected, atol=2e-3)
        # frame i of the centred STFT is drawn centred on i * hop, where it was measured
        rect = view._items[tile].mapRectToParent(view._items[tile].boundingRect())
        hop = FEATURES_32K.hop_size / FEATURES_32K.sample_rate
        assert rect.left() == pytest.approx((tile * TILE_FRAMES - 0.5) * hop)
        assert rect.width() == pytest.approx(len(image) * hop)
    # colour map and dB range controls reach every tile
    window.set_colormap("viridis")
    view.set_levels(-60.0, 0.0)
    for item in view._items.values():
        assert tuple(item.levels) == (-60.0, 0.0)


def test_wavegram_view_says_how_to_get_a_model(make_main_window, demo_path):
    window = make_main_window()
    window.wavegram.show()
    window.open_files([demo_path])
    text = window.wavegram.message.toPlainText()
    assert "No Wavegram model installed" in text
    assert "panns-sed models download Wavegram_Logmel_Cnn14" in text


@pytest.mark.slow
def test_zoomed_out_spectrogram_is_a_pooled_overview(make_main_window, qtbot, tmp_path):
    import soundfile as sf

    from panns_core.display.tiles import TILE_FRAMES, logmel_tile

    rate, seconds = 8000, 170.0  # 17 tiles: more than the view computes at full detail
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(3)
    x = 0.05 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * 700 * t) * (t % 20 < 2)
    path = tmp_path / "long.wav"
    sf.write(path, x.astype(np.float32), rate)
    window = make_main_window()
    window.open_files([path])
    view = window.spectrogram
    assert view.document.view_range == (0.0, seconds)
    qtbot.waitUntil(lambda: view.overview_fraction() >= 1.0, timeout=120000)
    assert view.overview_item.isVisible() and not view.visible_tiles()
    pool = view.overview_pool
    tile = 5
    full = logmel_tile(path, tile, view.feature_config)
    columns = TILE_FRAMES // pool
    shown = view._overview[tile * columns:(tile + 1) * columns]
    np.testing.assert_allclose(shown, full.reshape(-1, pool, full.shape[1]).max(axis=1),
                               atol=2e-3)
    # zoomed in, full-detail tiles replace the overview
    window.document.view_range = (50.0, 70.0)
    qtbot.waitUntil(lambda: len(view.visible_tiles()) >= 2, timeout=60000)
    assert not view.overview_item.isVisible()
