"""Project export/import planning (panns_core.annotations.exchange): round trips per format,
status filter, one file vs a folder, recording matching and per-file errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from panns_core import events as ev
from panns_core.annotations.exchange import import_operation, plan_export, plan_import, write_export
from panns_core.annotations.formats import FORMATS
from panns_core.annotations.store import ProjectStore
from panns_core.errors import FormatError

KEYS = ["recording_id", "onset", "offset", "label"]


def _wav(path, seconds=3.0, rate=8000):
    sf.write(path, np.zeros(int(seconds * rate), dtype=np.float32), rate)
    return path


@pytest.fixture
def project(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    store = ProjectStore(tmp_path / "a.panns")
    ids = [store.add_recording(_wav(audio / name)) for name in ("dawn.wav", "dusk.wav")]
    rows = []
    for k, rec in enumerate(ids):
        for i, status in enumerate(ev.STATUSES):
            rows.append({"recording": str(rec), "onset": 0.1 * i + k, "offset": 0.1 * i + k + 0.05,
                         "label": ["Dog", "Bird song", "Knock"][i % 3], "status": status,
                         "confidence": 0.5 if status == ev.PROPOSED else np.nan,
                         "source": "m" if status == ev.PROPOSED else ev.HUMAN})
    store.add_events(ev.make_events(rows))
    yield store, ids, audio
    store.close()


def _fresh(tmp_path, audio):
    store = ProjectStore(tmp_path / "b.panns")
    for name in ("dawn.wav", "dusk.wav"):
        store.add_recording(audio / name)
    return store


def _sorted(frame):
    return frame[KEYS].sort_values(KEYS).reset_index(drop=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_then_import_gives_the_same_events(project, tmp_path, fmt):
    store, _ids, audio = project
    plan = plan_export(store, fmt, tmp_path / "out")
    assert plan.n_events == 8 and plan.n_recordings == 2  # rejected left out
    assert len(plan.files) == 2  # into a folder: one file per recording
    written = write_export(plan)
    assert all(p.is_file() for p in written)
    target = _fresh(tmp_path, audio)
    items = plan_import(target, written)
    assert all(item.ok for item in items), [item.error for item in items]
    assert {item.format for item in items} == {fmt}
    target.apply(import_operation(target, items))
    expected = store.events(statuses=[s for s in ev.STATUSES if s != ev.REJECTED])
    assert_frame = _sorted(target.events())
    pd.testing.assert_frame_equal(assert_frame, _sorted(expected))
    target.close()


def test_one_file_for_the_project_and_status_choice(project, tmp_path):
    store, ids, audio = project
    plan = plan_export(store, "dcase", tmp_path / "all.tsv", per_recording=False,
                       statuses=ev.STATUSES)
    assert len(plan.files) == 1 and plan.n_events == 10
    (path,) = write_export(plan)
    text = path.read_text()
    assert "dawn.wav\t" in text and "dusk.wav\t" in text and str(tmp_path) not in text
    only = plan_export(store, "dcase", tmp_path / "one.tsv", recordings=[ids[1]],
                       statuses=[ev.ACCEPTED])
    assert only.n_events == 1 and only.n_recordings == 1
    assert "1 event(s) from 1 recording(s)" in only.describe()
    full = plan_export(store, "label_studio", tmp_path / "x.json", file_names=False)
    assert full.files[0][1]["recording"].iloc[0].startswith(str(audio))
    with pytest.raises(FormatError, match="holds one recording"):
        plan_export(store, "audacity", tmp_path / "x.txt", per_recording=False)
    assert plan_export(store, "dcase", tmp_path / "n.tsv", statuses=[]).files == []


def test_import_matching_and_errors_per_file(project, tmp_path):
    store, ids, _audio = project
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "dusk_labels.txt").write_text("0.5\t1.0\tOwl\n")
    (labels / "other.txt").write_text("0.5\t1.5\tOwl\n")
    (labels / "stranger.tsv").write_text("filename\tonset\toffset\tevent_label\n"
                                         "nowhere.wav\t0\t1\tDog\n")
    (labels / "broken.tsv").write_text("filename\tonset\toffset\tevent_label\n"
                                       "dawn.wav\tzero\t1\tDog\n")
    paths = sorted(labels.iterdir())
    items = {i.path.name: i for i in plan_import(store, paths)}
    assert items["dusk_labels.txt"].recording_ids() == [ids[1]]
    assert "does not say which recording" in items["other.txt"].error
    assert "nowhere.wav" in items["stranger.tsv"].error and "not in the project" in \
        items["stranger.tsv"].error
    assert "line 2" in items["broken.tsv"].error
    with_fallback = {i.path.name: i for i in plan_import(store, paths, fallback=ids[0])}
    assert with_fallback["other.txt"].recording_ids() == [ids[0]]
    before = len(store.events())
    undo = store.apply(import_operation(store, with_fallback.values()))
    assert len(store.events()) == before + 2
    store.apply(undo)
    assert len(store.events()) == before
    forced = plan_import(store, [labels / "other.txt"], format="sonic_visualiser")
    assert not forced[0].ok and forced[0].format == "sonic_visualiser"
