"""Frequency bands survive a project: import a real file, export, import again.

Real Raven tables and Audacity spectral label tracks (../shared/interop, copied into
tests/fixtures/interop) go into a project store, out through every format that holds a
band, and back into a fresh project: the bands (and times) are the same numbers.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from panns_core.annotations.exchange import (
    import_operation,
    plan_export,
    plan_import,
    write_export,
)
from panns_core.annotations.formats import read_annotations
from panns_core.annotations.store import ProjectStore

INTEROP = Path(__file__).parents[1] / "fixtures" / "interop"
SHARED = Path(__file__).parents[3] / "shared" / "interop"
ROOT = INTEROP if INTEROP.is_dir() else SHARED
RAVEN = sorted((ROOT / "raven").glob("*.txt"))
SPECTRAL = sorted((ROOT / "audacity-spectral").glob("*.txt"))


def _project(tmp_path: Path, name: str, stem: str, seconds: float) -> tuple[ProjectStore, int]:
    wav = tmp_path / f"{stem}.wav"
    if not wav.exists():
        sf.write(wav, np.zeros(int(8000 * seconds), np.float32), 8000)
    store = ProjectStore(tmp_path / f"{name}.panns")
    return store, store.add_recording(wav)


def _bands(frame):
    frame = frame.sort_values(["onset", "label"]).reset_index(drop=True)
    return frame[["onset", "offset", "label", "low_freq", "high_freq"]]


@pytest.mark.parametrize("path", RAVEN + SPECTRAL, ids=lambda p: p.name)
def test_bands_round_trip_through_a_project_exactly(path: Path, tmp_path: Path) -> None:
    source = read_annotations(path)
    assert source["low_freq"].notna().all() and source["high_freq"].notna().all()
    stem = path.name.split(".")[0]
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    store, _ = _project(tmp_path, "first", stem, float(source["offset"].max()) + 1)
    store.apply(import_operation(store, plan_import(store, [copy])))
    held = store.events()
    assert len(held) == len(source)
    original = _bands(source)
    np.testing.assert_array_equal(_bands(held)["low_freq"], original["low_freq"])
    np.testing.assert_array_equal(_bands(held)["high_freq"], original["high_freq"])
    for fmt in ("raven", "audacity", "label_studio", "events_table"):
        out = tmp_path / fmt
        out.mkdir()
        written = write_export(plan_export(store, fmt, out, per_recording=True))
        assert len(written) == 1
        again, _ = _project(tmp_path, f"again_{fmt}", stem, 1.0)
        again.apply(import_operation(again, plan_import(again, written)))
        back = _bands(again.events())
        assert len(back) == len(original), fmt
        for column in ("low_freq", "high_freq"):
            np.testing.assert_array_equal(back[column], original[column], err_msg=fmt)
        # times as each format writes them: Audacity six decimals, Raven to the
        # nanosecond (Raven's own 17-digit cells such as 11.028473970999999 come back as
        # 11.028473971), our table and Label Studio bit for bit
        atol = {"audacity": 1e-6, "raven": 1e-9}.get(fmt, 0.0)
        for column in ("onset", "offset"):
            np.testing.assert_allclose(back[column], original[column], rtol=0, atol=atol,
                                       err_msg=fmt)
        assert list(back["label"]) == list(original["label"])
        again.close()
    store.close()


def test_raven_from_raven_with_bands_reads_back_cell_for_cell(tmp_path: Path) -> None:
    """import -> export -> import of a Raven table from Raven: the exported table's
    times and bands are the original cells (as text, not only as numbers)."""
    path = RAVEN[0]
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    header, body = rows[0], rows[1:]
    store, _ = _project(tmp_path, "p", path.name.split(".")[0], 400.0)
    copy = tmp_path / path.name
    shutil.copy(path, copy)
    store.apply(import_operation(store, plan_import(store, [copy])))
    (out,) = write_export(plan_export(store, "raven", tmp_path / "out.txt"))
    written = [line.split("\t") for line in out.read_text().splitlines()]
    columns = ("Begin Time (s)", "End Time (s)", "Low Freq (Hz)", "High Freq (Hz)")
    at = {c: header.index(c) for c in columns}
    out_at = {c: written[0].index(c) for c in columns}
    for original, copy_row in zip(body, written[1:], strict=True):
        for column in columns:
            assert float(copy_row[out_at[column]]) == float(original[at[column]]), column
            assert not math.isnan(float(copy_row[out_at[column]]))
