"""The Wavegram view with a real Wavegram_Logmel_Cnn14 checkpoint, and the "no model" hints.

A checkpoint with deterministic weights is written once per session and installed the
way a user does (``panns_core.hub.installed.import_checkpoint``). The view's tiles are then
compared with ``model.wavegram()`` of the whole demo recording, read back from the image
items the view shows, frame by frame over the visible range.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

pytestmark = pytest.mark.gui

ARCH = "Wavegram_Logmel_Cnn14"
# The view computes a tile from its own frames plus an 8-frame margin of audio; the
# Wavegram branch sees about +-2 frames (conv0 + three blocks of two 3-convs and 4x
# pooling), so a tile has exactly the whole-file inputs. Only float32 summation order
# in the convolutions (oneDNN blocking depends on the input length) may differ: about
# 1e-6 relative on values up to ~5, i.e. well below 1e-4 after log1p.
ATOL = 1e-4


@pytest.fixture(scope="session")
def wavegram_checkpoint(tmp_path_factory, reference_dir):
    """(checkpoint path, whole-file Wavegram (frames, 128) of the demo recording)."""
    import torch

    sys.path.insert(0, str(reference_dir))
    try:
        from deterministic_weights import deterministic_state_dict
    finally:
        sys.path.remove(str(reference_dir))
    from panns_core.audio import load_audio
    from panns_core.data import resource_path
    from panns_core.hub.checkpoints import load_checkpoint, save_checkpoint
    from panns_core.labels import audioset_labels
    from panns_core.models import build_model

    model = build_model(ARCH).eval()
    model.load_state_dict(deterministic_state_dict(model.state_dict()))
    path = save_checkpoint(tmp_path_factory.mktemp("wavegram") / "wavegram_det.pth", model,
                           architecture=ARCH, feature_config=model.feature_config,
                           labels=audioset_labels().names)
    # the reference comes from the saved file, through the loader the app uses
    loaded = load_checkpoint(path).build_model("cpu")
    x, _ = load_audio(resource_path("demo.flac"), sample_rate=loaded.feature_config.sample_rate)
    with torch.inference_mode():
        whole = loaded.wavegram(torch.from_numpy(x)[None])[0].float().numpy()
    return path, whole


def _shown(view, start: float, stop: float) -> np.ndarray:
    """The values the view's image items show for every frame whose centre is in range."""
    fs = view.frame_seconds
    first, last = int(np.floor(start / fs)), int(np.ceil(stop / fs))
    rows = []
    for frame in range(max(0, first), last):
        centre = (frame + 0.5) * fs
        if not start <= centre <= stop:
            continue
        hits = []
        for item in view._items.values():
            rect = item.mapRectToParent(item.boundingRect())
            if item.isVisible() and rect.left() <= centre < rect.right():
                col = int((centre - rect.left()) / rect.width() * item.image.shape[0])
                assert rect.top() == 0 and rect.height() == item.image.shape[1] == view.n_bins
                hits.append(item.image[col])
        assert len(hits) == 1, f"frame {frame} ({centre:.3f} s) is drawn {len(hits)} times"
        rows.append((frame, hits[0]))
    frames = np.array([f for f, _ in rows])
    return frames, np.stack([r for _, r in rows])


def _check_range(view, whole: np.ndarray) -> None:
    start, stop = view.document.view_range
    frames, shown = _shown(view, start, stop)
    expected = np.log1p(np.maximum(whole[frames], 0.0))
    np.testing.assert_allclose(shown, expected, atol=ATOL, rtol=0)
    assert frames[0] <= start / view.frame_seconds + 1
    assert frames[-1] >= min(stop, view.document.duration) / view.frame_seconds - 2


def _wavegram_action(window):
    (action,) = [a for a in window.view_menu.actions() if a.text() == "Wavegram"]
    return action


@pytest.mark.slow
def test_wavegram_view_shows_the_models_wavegram(make_main_window, qtbot, demo_path,
                                                 wavegram_checkpoint):
    from panns_core.hub import installed as registry

    path, whole = wavegram_checkpoint
    record = registry.import_checkpoint(path)
    assert record.architecture == ARCH
    window = make_main_window()
    view = window.wavegram
    doc = window.document
    window.open_files([demo_path])
    assert not view.isVisible()
    doc.view_range = (1.0, 4.0)
    qtbot.wait(50)
    assert not view._slot.busy and view._model is None, "a hidden view loaded the model"

    _wavegram_action(window).trigger()  # View ▸ Wavegram
    assert view.isVisible()
    qtbot.waitUntil(lambda: 0 in view.visible_tiles(), timeout=60000)
    assert not view.message.isVisible()
    assert view.visible_tiles() == [0]  # only the visible range was fetched
    assert view.cache.get(view.tile_key(1)) is None
    _check_range(view, whole)
    # the colour scale spans what the image holds: nothing clipped away at the top
    # beyond the brightest 0.5 %, and most of the colour map in use
    low, high = view.levels
    values = np.log1p(whole[:1024])
    assert np.mean(values > high) < 0.005
    assert np.percentile(values, 99.9) > low + 0.6 * (high - low)

    # scroll into the second tile: it is fetched and shown
    for _ in range(16):  # 0.25 of the width per step, as the arrow keys do
        doc.scroll(0.25)
    assert doc.view_range[0] > 10.24
    qtbot.waitUntil(lambda: 1 in view.visible_tiles(), timeout=30000)
    _check_range(view, whole)

    # zoom in across the tile boundary, then out to the whole file
    doc.view_range = (10.0, 10.5)
    _check_range(view, whole)
    doc.zoom(0.1, center=10.24)
    _check_range(view, whole)
    doc.show_all()
    _check_range(view, whole)
    assert view.visible_tiles() == [0, 1]

    # the model is removed (Models ▸ Model manager emits models_changed): its image goes
    registry.remove(record.name)
    view.refresh_model()
    assert view.visible_tiles() == [] and len(view.cache) == 0
    assert view.message.isVisible()
    assert "No Wavegram model installed" in view.message.toPlainText()


def test_without_any_model_the_classes_view_says_how_to_get_one(make_main_window, demo_path):
    window = make_main_window()
    window.open_files([demo_path])
    text = window.heatmap.message.toPlainText()
    assert window.heatmap.message.isVisible()
    assert "Models ▸ Model manager" in text
    assert "No detection model installed" in text


def test_with_a_model_the_classes_view_says_run_detection(make_main_window, demo_path,
                                                          sed_checkpoint):
    from panns_core.hub import installed as registry

    window = make_main_window()
    window.open_files([demo_path])
    assert "Model manager" in window.heatmap.message.toPlainText()
    registry.import_checkpoint(sed_checkpoint)
    window.heatmap.refresh_hint()  # what the model manager's models_changed calls
    text = window.heatmap.message.toPlainText()
    assert "Model manager" not in text
    assert "Ctrl+D" in text
