"""Annotation formats: real files from other tools, round trips, fuzzing, errors."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panns_core.annotations.formats import (
    FORMATS,
    detect_format,
    dumps_annotations,
    loads_annotations,
    read_annotations,
    read_durations,
    read_weak_labels,
    weak_labels_from_events,
    write_annotations,
    write_durations,
    write_weak_labels,
)
from panns_core.annotations.formats.sonic_visualiser import split_quoted
from panns_core.errors import FormatError
from panns_core.events import ADDED, HUMAN, PROPOSED, STATUSES, make_events

INTEROP = Path(__file__).parents[1] / "fixtures" / "interop"
AUDACITY_FILES = sorted((INTEROP / "audacity").glob("*.txt")) + sorted(
    (INTEROP / "audacity-spectral").glob("*.txt")
)
RAVEN_FILES = sorted((INTEROP / "raven").glob("*.txt"))

# Which columns each format holds (see panns_core.annotations.formats).
HOLDS = {
    "dcase": ("recording", "onset", "offset", "label"),
    "audacity": ("onset", "offset", "label", "low_freq", "high_freq"),
    "raven": ("recording", "onset", "offset", "label", "low_freq", "high_freq", "confidence",
              "note"),
    "sonic_visualiser": ("onset", "offset", "label", "confidence"),
    "label_studio": ("recording", "onset", "offset", "label", "confidence", "note", "source",
                     "status", "low_freq", "high_freq"),
    "events_table": ("recording", "onset", "offset", "label", "confidence", "low_freq",
                     "high_freq", "source", "status", "note"),
}


# How far a written time or frequency may be from the value: each format writes what its
# own tools write (Audacity six decimals, the others to the nanosecond), not 17 digits.
TOLERANCE = {"dcase": 1e-9, "audacity": 1e-6, "raven": 1e-9, "sonic_visualiser": 2e-9,
             "label_studio": 0.0, "events_table": 0.0}


def same(a: pd.DataFrame, b: pd.DataFrame, columns, sort: bool = False,
         atol: float = 0.0) -> None:
    a, b = a.loc[:, list(columns)], b.loc[:, list(columns)]
    if sort:
        a = a.sort_values(list(columns)).reset_index(drop=True)
        b = b.sort_values(list(columns)).reset_index(drop=True)
    assert len(a) == len(b)
    for column in columns:
        left, right = a[column].to_numpy(), b[column].to_numpy()
        if left.dtype.kind == "f" and atol:
            np.testing.assert_allclose(left, right, rtol=0, atol=atol, err_msg=column)
        elif left.dtype.kind == "f":
            np.testing.assert_array_equal(left, right, err_msg=column)
        else:
            assert list(left) == list(right), column


def raw_audacity(path: Path) -> list[dict]:
    """The file's rows straight from its text, to compare the importer with."""
    rows: list[dict] = []
    for line in path.read_text().splitlines():
        parts = line.split("\t")
        if parts[0] == "\\":
            rows[-1]["low_freq"], rows[-1]["high_freq"] = float(parts[1]), float(parts[2])
        else:
            rows.append({"onset": float(parts[0]), "offset": float(parts[1]),
                         "label": parts[2], "low_freq": math.nan, "high_freq": math.nan})
    return rows


@pytest.mark.parametrize("path", AUDACITY_FILES, ids=lambda p: p.name)
def test_real_audacity_files_import_without_loss_and_round_trip(path: Path) -> None:
    assert detect_format(path.read_text(), str(path)) == "audacity"
    events = read_annotations(path)
    expected = make_events(raw_audacity(path))
    assert len(events) == len(expected) > 0
    same(events, expected, HOLDS["audacity"])
    if "spectral" in str(path.parent):
        assert events["low_freq"].notna().all() and events["high_freq"].notna().all()
    for fmt, columns in HOLDS.items():
        again = loads_annotations(dumps_annotations(events, fmt), fmt)
        held = [c for c in columns if c in HOLDS["audacity"]]
        same(again, events, held, sort=fmt == "label_studio", atol=TOLERANCE[fmt])
    text = dumps_annotations(events, "audacity")
    assert dumps_annotations(loads_annotations(text, "audacity"), "audacity") == text


@pytest.mark.parametrize("path", RAVEN_FILES, ids=lambda p: p.name)
def test_real_raven_tables_import_without_loss_and_round_trip(path: Path, tmp_path: Path) -> None:
    data = path.read_bytes()
    assert b"\r\n" in data
    with open(path, newline="") as handle:
        table = list(csv.DictReader(handle, delimiter="\t"))
    events = read_annotations(path)
    assert len(events) == len(table) > 0
    assert list(events["onset"]) == [float(r["Begin Time (s)"]) for r in table]
    assert list(events["offset"]) == [float(r["End Time (s)"]) for r in table]
    assert list(events["low_freq"]) == [float(r["Low Freq (Hz)"]) for r in table]
    assert list(events["high_freq"]) == [float(r["High Freq (Hz)"]) for r in table]
    assert list(events["label"]) == [r["Species"] for r in table]
    out = write_annotations(events, tmp_path / "out.selections.txt")
    assert out.read_bytes().count(b"\r\n") == len(events) + 1
    same(read_annotations(out), events, HOLDS["raven"], atol=TOLERANCE["raven"])
    for fmt, columns in HOLDS.items():
        held = [c for c in columns if c in ("onset", "offset", "label", "low_freq", "high_freq")]
        same(loads_annotations(dumps_annotations(events, fmt), fmt), events, held,
             sort=fmt == "label_studio", atol=TOLERANCE[fmt])


def test_raven_reads_each_selection_once_preferring_the_spectrogram_view() -> None:
    text = (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
        "High Freq (Hz)\tAnnotation\r\n"
        "1\tWaveform 1\t1\t0.5\t1.5\t0\t0\tdog\r\n"
        "1\tSpectrogram 1\t1\t0.5\t1.5\t300\t4000\tdog\r\n"
        "2\tSpectrogram 1\t1\t2.0\t3.0\t100\t900\towl\r\n"
        "2\tWaveform 1\t1\t2.0\t3.0\t0\t0\towl\r\n"
        "3\tWaveform 1\t1\t4.0\t4.5\t\t\t\r\n"
    )
    events = loads_annotations(text)
    assert list(events["label"]) == ["dog", "owl", ""]
    assert list(events["low_freq"][:2]) == [300.0, 100.0]
    assert list(events["high_freq"][:2]) == [4000.0, 900.0]
    assert math.isnan(events["low_freq"][2])


def test_raven_begin_file_and_file_offset_give_times_within_each_file() -> None:
    text = (
        "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\t"
        "High Freq (Hz)\tBegin File\tFile Offset (s)\tSpecies\n"
        "1\tSpectrogram 1\t1\t5.0\t6.0\t0\t1000\ta.wav\t5.0\tx\n"
        "2\tSpectrogram 1\t1\t65.0\t66.5\t0\t1000\tb.wav\t5.0\ty\n"
    )
    events = loads_annotations(text, "raven")
    assert list(events["recording"]) == ["a.wav", "b.wav"]
    assert list(events["onset"]) == [5.0, 5.0]
    assert list(events["offset"]) == [6.0, 6.5]


def test_sonic_visualiser_layouts() -> None:
    # As Sonic Visualiser exports a regions layer (no header, no quoting) ...
    events = loads_annotations("0.500000000,0.8,1.250000000,Bird song\n"
                               "2.000000000,440,0.5,a, b\n", name="layer.csv")
    assert list(events["label"]) == ["Bird song", "a, b"]
    assert list(events["offset"]) == [1.75, 2.5]
    assert events["confidence"][0] == 0.8 and math.isnan(events["confidence"][1])
    # ... with a header row, quoting as its reader understands it, and instants
    events = loads_annotations(
        'TIME,VALUE,DURATION,LABEL\n1,,2,"say \\"hi\\", \\\\ ok"\n3,x\n4,0.5,5\n',
        "sonic_visualiser",
    )
    assert list(events["label"]) == ['say "hi", \\ ok', "x", ""]
    assert list(events["offset"]) == [3.0, 3.0, 9.0]
    assert split_quoted("'a,b',c") == ["a,b", "c"]


def test_label_studio_export_with_predictions_and_cancelled_work() -> None:
    document = [{
        "id": 7,
        "data": {"audio": "/data/upload/3/dawn.wav"},
        "annotations": [
            {"id": 1, "was_cancelled": False, "result": [
                {"value": {"start": 1.0, "end": 2.5, "channel": 0, "labels": ["Wren", "Bird"]},
                 "id": "r1", "from_name": "label", "to_name": "audio", "type": "labels",
                 "origin": "manual", "meta": {"text": ["faint"]}},
                {"value": {"choices": ["good"]}, "type": "choices", "from_name": "q",
                 "to_name": "audio"},
            ]},
            {"id": 2, "was_cancelled": True, "result": [
                {"value": {"start": 0.0, "end": 1.0, "labels": ["ignored"]}}]},
        ],
        "predictions": [{"model_version": "cnn14_sed", "score": 0.4, "result": [
            {"value": {"start": 3.0, "end": 4.0, "labels": ["Speech"]}, "score": 0.91},
            {"value": {"start": 5.0, "end": 6.0, "labels": ["Dog"]}},
        ]}],
    }]
    events = loads_annotations(json.dumps(document), name="export.json")
    assert list(events["label"]) == ["Wren", "Bird", "Speech", "Dog"]
    assert list(events["status"]) == [ADDED, ADDED, PROPOSED, PROPOSED]
    assert list(events["source"]) == [HUMAN, HUMAN, "cnn14_sed", "cnn14_sed"]
    assert list(events["confidence"][2:]) == [0.91, 0.4]
    assert events["note"][0] == "faint"
    assert set(events["recording"]) == {"/data/upload/3/dawn.wav"}
    minimal = [{"audio": "a.wav", "id": 1, "label": [{"start": 0.5, "end": 1.0,
                                                      "labels": ["x"]}]}]
    events = loads_annotations(json.dumps(minimal), "label_studio")
    assert list(events["label"]) == ["x"] and list(events["recording"]) == ["a.wav"]


# -- round trips ------------------------------------------------------------------------
times = st.floats(0, 1e5, allow_nan=False, allow_infinity=False)
freqs = st.one_of(st.just(math.nan), st.floats(0, 96000, allow_nan=False))
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def no_breaks(*extra: str):
    return texts.filter(lambda s: not any(c in s for c in ("\n", "\r", *extra)))


@st.composite
def event_frames(draw, label=texts, recording=texts, note=texts, freq=True):
    n = draw(st.integers(0, 6))
    rows = []
    for _ in range(n):
        onset = draw(times)
        rows.append({
            "recording": draw(recording),
            "onset": onset,
            "offset": onset + draw(st.floats(0, 100, allow_nan=False)),
            "label": draw(label),
            "confidence": draw(st.one_of(st.just(math.nan), st.floats(0, 1))),
            "low_freq": draw(freqs) if freq else math.nan,
            "high_freq": draw(freqs) if freq else math.nan,
            "source": draw(st.sampled_from([HUMAN, "cnn14_sed", "fine-tuned 2"])),
            "status": draw(st.sampled_from(STATUSES)),
            "note": draw(note),
        })
    return make_events(rows) if rows else make_events(None)


ROUND_TRIP = {
    "dcase": event_frames(label=no_breaks("\t"), recording=no_breaks("\t")),
    "audacity": event_frames(label=no_breaks()),
    "raven": event_frames(label=no_breaks("\t"), recording=no_breaks("\t"),
                          note=no_breaks("\t")),
    "sonic_visualiser": event_frames(label=no_breaks()),
    "label_studio": event_frames(),
    "events_table": event_frames(),
}


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_what_a_format_holds_survives_write_then_read(fmt: str, data) -> None:
    events = data.draw(ROUND_TRIP[fmt])
    text = dumps_annotations(events, fmt)
    back = loads_annotations(text.encode("utf-8"), fmt)
    expected = events.copy()
    if fmt == "label_studio":  # a person's proposal (none in practice) is an annotation
        human_proposal = (expected["status"] == PROPOSED) & (expected["source"] == HUMAN)
        expected.loc[human_proposal, "status"] = ADDED
    same(back, expected, HOLDS[fmt], sort=fmt == "label_studio", atol=TOLERANCE[fmt])
    if len(events):
        assert detect_format(text) == fmt


@pytest.mark.parametrize(
    ("fmt", "bad"),
    [("dcase", "a\tb"), ("dcase", "two\nlines"), ("raven", "x\ty"), ("audacity", "a\rb"),
     ("sonic_visualiser", "line\nbreak")],
)
def test_text_a_format_cannot_hold_is_refused_clearly(fmt: str, bad: str) -> None:
    events = make_events([{"onset": 0.0, "offset": 1.0, "label": bad}])
    with pytest.raises(FormatError, match="cannot hold"):
        dumps_annotations(events, fmt)
    assert loads_annotations(dumps_annotations(events, "label_studio"))["label"][0] == bad


def test_labels_with_commas_quotes_tabs_and_non_ascii() -> None:
    labels = ['Bird, "song"', "Vogel – Gesang ü", "鳥の声", "it's \\ 'odd'", " pad "]
    events = make_events([{"onset": float(i), "offset": i + 0.5, "label": label}
                          for i, label in enumerate(labels)], recording="f,1.wav")
    for fmt in FORMATS:
        back = loads_annotations(dumps_annotations(events, fmt), fmt)
        assert sorted(back["label"]) == sorted(labels), fmt
    tabbed = make_events([{"onset": 0.0, "offset": 1.0, "label": "a\tb"}])
    for fmt in ("audacity", "sonic_visualiser", "label_studio"):
        assert loads_annotations(dumps_annotations(tabbed, fmt), fmt)["label"][0] == "a\tb"


def test_weak_labels_and_durations(tmp_path: Path) -> None:
    events = make_events([
        {"recording": "a.wav", "onset": 0.0, "offset": 1.0, "label": "Dog"},
        {"recording": "a.wav", "onset": 2.0, "offset": 3.0, "label": "Cat"},
        {"recording": "a.wav", "onset": 4.0, "offset": 5.0, "label": "Dog"},
        {"recording": "b ü.wav", "onset": 0.0, "offset": 1.0, "label": "Speech"},
    ])
    weak = weak_labels_from_events(events)
    assert weak == {"a.wav": ["Dog", "Cat"], "b ü.wav": ["Speech"]}
    path = write_weak_labels({**weak, "c.wav": []}, tmp_path / "weak.tsv")
    assert read_weak_labels(path) == {**weak, "c.wav": []}
    with pytest.raises(FormatError, match="weak-label"):
        read_annotations(path)
    with pytest.raises(FormatError, match="cannot hold"):
        write_weak_labels({"a.wav": ["Bird, song"]}, tmp_path / "bad.tsv")
    durations = {"a.wav": 10.0, "b ü.wav": 1.0 / 3.0}
    path = write_durations(durations, tmp_path / "durations.tsv")
    assert read_durations(path) == durations
    with pytest.raises(FormatError, match="duration file"):
        read_annotations(path)
    (tmp_path / "d.tsv").write_text("a.wav\tlong\n")
    with pytest.raises(FormatError, match=r"d\.tsv, line 1: duration 'long'"):
        read_durations(tmp_path / "d.tsv")


@pytest.mark.parametrize(
    ("fmt", "text", "line", "problem"),
    [
        ("audacity", "0\t1\ta\n1\t2\tb\n2\tzwei\tc\n", 3, "end time 'zwei' is not a number"),
        ("audacity", "\\\t10\t20\n", 1, "frequency line"),
        ("audacity", "0\t1\ta\n5\t4\tb\n", 2, "ends"),
        ("dcase", "filename\tonset\toffset\tevent_label\na\t0\t1\tx\nb\t1\n", 3, "columns"),
        ("raven", "Selection\tBegin Time (s)\tEnd Time (s)\n1\t0\tnan\n", 2, "not a finite"),
        ("raven", "Selection\tView\nx\ty\n", 1, "Begin Time"),
        ("sonic_visualiser", "1,0.5,2,a\n-1,0.5,2,b\n", 2, "negative onset"),
    ],
)
def test_errors_name_file_line_and_problem(tmp_path: Path, fmt: str, text: str, line: int,
                                           problem: str) -> None:
    path = tmp_path / "broken.txt"
    path.write_text(text)
    with pytest.raises(FormatError) as caught:
        read_annotations(path, fmt)
    message = str(caught.value)
    assert str(path) in message and f"line {line}" in message and problem in message


def test_label_studio_errors_name_the_task(tmp_path: Path) -> None:
    path = tmp_path / "ls.json"
    path.write_text(json.dumps([{"data": {"audio": "a"}, "annotations": [
        {"result": [{"value": {"start": "soon", "end": 2, "labels": ["x"]}}]}]}]))
    with pytest.raises(FormatError, match=r"ls\.json: task 0, annotation 0, result 0: start"):
        read_annotations(path)
    path.write_text("[{]")
    with pytest.raises(FormatError, match=r"ls\.json, line 1: not valid JSON"):
        read_annotations(path)


def test_detection_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="cannot tell"):
        loads_annotations("hello world\n", name="notes")
    with pytest.raises(FormatError, match="Unknown annotation format"):
        loads_annotations("", "praat")
    assert len(loads_annotations(b"", "audacity")) == 0
    assert detect_format("", "x.csv") == "sonic_visualiser"
    with pytest.raises(FormatError, match="Cannot read"):
        read_annotations(tmp_path / "absent.txt")
    latin = "0.5\t1.0\tcaf\xe9\n".encode("cp1252")
    assert loads_annotations(latin)["label"][0] == "café"
    utf16 = "0.5\t1.0\tcafé\n".encode("utf-16")
    assert loads_annotations(utf16)["label"][0] == "café"


# -- fuzzing: random input raises FormatError and nothing else ----------------------------
def parse_or_format_error(data, fmt) -> None:
    try:
        events = loads_annotations(data, fmt, name="fuzz")
    except FormatError:
        return
    assert list(events.columns)[:4] == ["recording", "onset", "offset", "label"]
    assert (events["offset"] >= events["onset"]).all() and (events["onset"] >= 0).all()


tokens = st.sampled_from([
    "0", "1.5", "-2", "1e400", "nan", "inf", "\t", ",", "\n", "\r\n", "\\", '"', "'", "x",
    "Begin Time (s)", "End Time (s)", "Selection", "View", "Spectrogram 1", "filename",
    "onset", "offset", "event_label", "Begin File", "File Offset (s)", "Low Freq (Hz)",
    "[", "]", "{", "}", ":", '"start"', '"end"', '"labels"', '"result"', '"annotations"',
    '"predictions"', '"data"', "null", "true", "9" * 5000, "é", "\x00",
])
shaped = st.lists(tokens, max_size=60).map("".join)
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["data", "audio", "annotations", "predictions", "result",
                                       "value", "start", "end", "labels", "score", "meta",
                                       "text", "was_cancelled", "model_version", "label"]),
                      children, max_size=5),
    max_leaves=20,
)


@pytest.mark.parametrize("fmt", [None, *FORMATS])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=300), st.text(max_size=300), shaped))
def test_random_input_raises_format_error_only(fmt: str | None, data) -> None:
    parse_or_format_error(data, fmt)


@settings(max_examples=150, deadline=None)
@given(document=json_values)
def test_random_json_raises_format_error_only(document) -> None:
    parse_or_format_error(json.dumps(document), "label_studio")
    parse_or_format_error("[" * 100_000, "label_studio")


def test_times_are_written_as_the_formats_own_tools_write_them() -> None:
    """Audacity: six decimals; Raven, DCASE, Sonic Visualiser: to the nanosecond, no float
    artefacts; a 1/384000 s step (a bat recording's sample) survives each of them."""
    sample = 1 / 384000
    events = make_events([{"recording": "bat.wav", "onset": 0.1 + 0.2, "offset": 123457 * sample,
                           "label": "Bat", "low_freq": 20000.0, "high_freq": 0.1 + 0.2}])
    assert dumps_annotations(events, "audacity").splitlines() == [
        "0.300000\t0.321503\tBat", "\\\t20000.000000\t0.300000"]
    raven = dumps_annotations(events, "raven").splitlines()[1].split("\t")
    assert raven[3:7] == ["0.3", "0.321502604", "20000.0", "0.3"]
    dcase = dumps_annotations(events, "dcase").splitlines()[1]
    assert dcase == "bat.wav\t0.3\t0.321502604\tBat"
    for fmt in ("audacity", "raven", "dcase", "sonic_visualiser"):
        back = loads_annotations(dumps_annotations(events, fmt), fmt)
        assert round(back["offset"][0] / sample) == 123457, fmt  # the same sample
        assert "0000000" not in dumps_annotations(events, fmt).replace("0.000000", ""), fmt


def test_the_programs_own_tables_import_with_status_and_source(tmp_path: Path) -> None:
    """``detect --format csv|json`` tables and exported events tables read back whole."""
    events = make_events([
        {"recording": "a.wav", "onset": 1.0, "offset": 2.0, "label": "Cattle, bovinae",
         "confidence": 0.8, "source": "cnn14@abc", "status": "accepted", "note": 'a "b"'},
        {"recording": "b.wav", "onset": 0.5, "offset": 0.75, "label": "Dog",
         "source": "human", "status": "rejected"},
    ])
    text = dumps_annotations(events, "events_table")
    assert detect_format(text) == "events_table"
    same(loads_annotations(text, "events_table"), events, HOLDS["events_table"])
    as_json = events.to_json(orient="records", indent=1)  # what detect --format json writes
    assert detect_format(as_json) == "events_table"
    same(loads_annotations(as_json), events, HOLDS["events_table"])
    with pytest.raises(FormatError, match="status"):
        loads_annotations(text.replace("rejected", "maybe"), "events_table")
