"""The synthetic strongly-labelled dataset used by the training tests and benchmarks."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from panns_core.events import EVENT_COLUMNS
from panns_core.training.synthetic import SYNTHETIC_CLASSES, make_synthetic_dataset


def test_files_events_and_reproducibility(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", n_recordings=3, duration=6.0, seed=7)
    b = make_synthetic_dataset(tmp_path / "b", n_recordings=3, duration=6.0, seed=7)
    c = make_synthetic_dataset(tmp_path / "c", n_recordings=3, duration=6.0, seed=8)
    assert [p.read_bytes() for p in a.recordings] == [p.read_bytes() for p in b.recordings]
    assert a.recordings[0].read_bytes() != c.recordings[0].read_bytes()
    assert list(a.events.columns) == list(EVENT_COLUMNS)
    assert set(a.events["label"]) <= set(SYNTHETIC_CLASSES)
    assert (a.events["status"] == "added").all()
    for path in a.recordings:
        info = sf.info(path)
        assert (info.samplerate, info.channels) == (32000, 1)
        assert abs(info.duration - 6.0) < 1e-6
        events = a.events[a.events["recording"] == path.name].sort_values("onset")
        assert 3 <= len(events) <= 5  # "up to" events_per_recording fit
        # no overlaps, inside the file
        assert (events["onset"].to_numpy()[1:] > events["offset"].to_numpy()[:-1]).all()
        assert events["onset"].min() >= 0 and events["offset"].max() <= 6.0


def test_events_are_louder_than_background(tmp_path):
    data = make_synthetic_dataset(tmp_path, n_recordings=2, duration=8.0, seed=1)
    for path in data.recordings:
        x, sr = sf.read(path, dtype="float32")
        active = np.zeros(len(x), bool)
        for on, off in data.events.loc[
            data.events["recording"] == path.name, ["onset", "offset"]
        ].to_numpy():
            active[int(on * sr) : int(off * sr)] = True
        inside = np.sqrt(np.mean(x[active] ** 2))
        outside = np.sqrt(np.mean(x[~active] ** 2))
        assert inside > 4 * outside


def test_dcase_and_duration_files(tmp_path):
    from panns_core.evaluation import event_based
    from panns_core.evaluation.io import read_durations, read_events

    data = make_synthetic_dataset(tmp_path, n_recordings=2, duration=5.0, seed=2)
    ref = read_events(data.write_dcase(tmp_path / "ref.tsv"))
    assert len(ref) == len(data.events)
    assert event_based.evaluate(ref, data.events)["overall"]["f1"] == 1.0
    durations = read_durations(data.write_durations(tmp_path / "durations.tsv"))
    assert durations == {p.stem: 5.0 for p in data.recordings}
