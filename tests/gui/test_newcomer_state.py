"""A project reopens as it was left (recording, view range, params and the events they
give, shown views, class heatmap names), and the export dialog's defaults and memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from panns_core import events as ev

pytestmark = pytest.mark.gui

LABELS = ["Dog", "Bird", "Speech"]


def _tone(path: Path, seconds: float = 10.0, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)
    return path


def _scores(path: Path, duration: float = 10.0):
    from panns_core.audio import file_sha256
    from panns_core.detection.scores import Scores

    n = int(duration / 0.32)
    probs = np.full((n, len(LABELS)), 0.05, dtype=np.float32)
    times = np.arange(n) * 0.32
    probs[(times >= 2) & (times < 4), 0] = 0.5  # Dog, under a 0.6 threshold
    probs[(times >= 6) & (times < 8), 1] = 0.8  # Bird
    return Scores(probs, 0.32, LABELS, model_id="tiny@1", audio_hash=file_sha256(path),
                  duration=duration)


def test_a_project_reopens_as_it_was_left(make_main_window, qtbot, tmp_path):
    from panns_core.detection.postprocess import scores_to_events

    project = tmp_path / "field.panns"
    a, b = _tone(tmp_path / "a.wav"), _tone(tmp_path / "b.wav")
    first = make_main_window(project=project)
    doc = first.document
    first.open_files([a, b])
    rec_b = doc.recordings[1].id
    doc.set_recording(rec_b)
    scores = _scores(b)
    doc.set_scores(scores)
    doc.save_scores(rec_b, scores)
    doc.rederive_events()
    assert sorted(doc.annotations["label"]) == ["Bird", "Dog"]
    doc.view_range = (2.5, 6.0)
    doc.cursor = 3.25
    first.view_actions["Probability"].setChecked(False)
    first.view_actions["Log-mel"].setChecked(False)
    # a threshold change: its re-derivation is still pending when the window closes
    doc.update_params(threshold=0.6, top_k=2)
    first.close()

    second = make_main_window(project=project)
    doc = second.document
    assert doc.recording is not None and doc.recording.id == rec_b
    assert doc.view_range == pytest.approx((2.5, 6.0))
    assert doc.cursor == pytest.approx(3.25)
    assert doc.params.threshold == pytest.approx(0.6) and doc.params.top_k == 2
    detection = second.panels["detection"]
    assert detection.threshold_spin.value() == pytest.approx(0.6)
    assert detection.top_k_spin.value() == 2
    # the events shown are the ones those params give (only Bird passes 0.6)
    expected = scores_to_events(scores, doc.params, recording=str(doc.recording.path))
    assert list(doc.annotations["label"]) == list(expected["label"]) == ["Bird"]
    assert doc.annotations["onset"].to_numpy() == pytest.approx(expected["onset"].to_numpy())
    assert not second.curves.isVisibleTo(second) and not second.spectrogram.isVisibleTo(second)
    assert not second.view_actions["Probability"].isChecked()
    assert second.waveform.isVisibleTo(second)
    # the class heatmap is back, with its class names on the axis
    assert second.heatmap.classes
    ticks = second.heatmap.getPlotItem().getAxis("left")._tickLevels[0]
    assert [t[1] for t in ticks][:2] == ["Bird", "Dog"]
    assert not second.heatmap.message.isVisible()


def test_a_removed_recording_is_not_restored(make_main_window, tmp_path):
    project = tmp_path / "p.panns"
    a, b = _tone(tmp_path / "a.wav", 2.0), _tone(tmp_path / "b.wav", 2.0)
    first = make_main_window(project=project)
    first.open_files([a, b])
    gone = first.document.recording.id
    first.close()
    from panns_core.annotations.store import ProjectStore

    with ProjectStore(project) as store:
        store.remove_recording(gone)
    second = make_main_window(project=project)
    assert second.document.recording is None
    assert second.last_error is None


def test_export_dialog_defaults_and_memory(make_main_window, qtbot, tmp_path):
    from app.dialogs.io_dialogs import ExportDialog
    from panns_core.paths import data_dir

    # the default project lives in the program's (hidden) data folder: export next to
    # the recording instead
    audio = _tone(tmp_path / "rec" / "dawn.wav", 2.0)
    window = make_main_window(project=data_dir() / "projects" / "default.panns")
    doc = window.document
    window.open_files([audio])
    doc.store.add_events(ev.make_events([
        {"onset": 0.1, "offset": 0.5, "label": "Dog", "status": ev.PROPOSED, "source": "m"},
        {"onset": 0.6, "offset": 0.9, "label": "Bird", "status": ev.ACCEPTED, "source": "m"},
    ]), doc.recording.id)
    dialog = ExportDialog(doc, window)
    assert Path(dialog.dest_edit.text()).parent == tmp_path / "rec"
    assert not dialog.status_boxes[ev.PROPOSED].isChecked()
    assert dialog.status_boxes[ev.ACCEPTED].isChecked()
    assert dialog.preview.text().startswith("1 event(s)")
    out = tmp_path / "exports"
    out.mkdir()
    dialog.set_format("raven")
    dialog.status_boxes[ev.PROPOSED].setChecked(True)
    dialog.file_names.setChecked(False)
    dialog.set_destination(out / "dawn.selections.txt")
    assert dialog.export()
    dialog.deleteLater()

    again = ExportDialog(doc, window)  # remembers folder and options
    assert again.format == "raven"
    assert Path(again.dest_edit.text()).parent == out
    assert again.status_boxes[ev.PROPOSED].isChecked()
    assert not again.file_names.isChecked()
    assert again.preview.text().startswith("2 event(s)")
    again.deleteLater()


def test_export_default_folder_is_the_projects(make_main_window, tmp_path):
    from app.dialogs.io_dialogs import ExportDialog

    audio = _tone(tmp_path / "elsewhere" / "dawn.wav", 2.0)
    window = make_main_window(project=tmp_path / "work" / "p.panns")
    window.open_files([audio])
    dialog = ExportDialog(window.document, window)
    assert Path(dialog.dest_edit.text()).parent == tmp_path / "work"
    dialog.deleteLater()
