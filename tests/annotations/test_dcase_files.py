"""DCASE TSVs as the field writes and reads them: sed_eval, pandas, the csv module, DESED.

The fixtures (tests/fixtures/dcase, made by make_fixtures.py from a real DCASE file) hold
files listed without events (``name<TAB><TAB><TAB>``, the DESED convention), non-ASCII
labels, labels with commas, and weak labels with empty rows.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from panns_core.annotations.formats import (
    detect_format,
    dumps_annotations,
    loads_annotations,
    read_annotations,
    read_weak_labels,
    write_annotations,
    write_weak_labels,
)
from panns_core.cli import main
from panns_core.errors import FormatError
from panns_core.events import make_events

FIXTURES = Path(__file__).parents[1] / "fixtures" / "dcase"
REFERENCE = FIXTURES / "reference.tsv"
ESTIMATED = FIXTURES / "estimated.tsv"
WEAK = FIXTURES / "weak.tsv"
EMPTY = ["dev_0005.flac", "dev_0012.flac", "dev_0020.flac", "dev_0028.flac", "dev_0035.flac"]
QUOTED = ['"quoted" voice', 'a "b" c', '"', "Cattle, bovinae", "鳥の声 – ü", " pad "]


def pandas_rows(path: Path) -> pd.DataFrame:
    """The file as pandas reads it (DESED's own loading: read_csv with sep='\\t')."""
    return pd.read_csv(path, sep="\t")


def test_files_listed_without_events_read_as_sed_eval_reads_them() -> None:
    events = read_annotations(REFERENCE)
    frame = pandas_rows(REFERENCE)
    listed = frame[frame["event_label"].notna()]
    assert len(events) == len(listed)
    assert list(events["recording"]) == list(listed["filename"])
    np.testing.assert_allclose(events["onset"], listed["onset"])
    assert list(events["label"]) == list(listed["event_label"])
    # every listed file, with or without events, in file order
    assert events.attrs["recordings"] == list(dict.fromkeys(frame["filename"]))
    assert set(EMPTY) <= set(events.attrs["recordings"])
    assert not set(EMPTY) & set(events["recording"])
    assert {"犬 (chien)", "Sprache ü", "Cattle, bovinae"} <= set(events["label"])
    # the list is read-side knowledge: a frame filtered after reading does not write it
    one = events[events["recording"] == "dev_0000.flac"]
    assert dumps_annotations(one, "dcase").count("dev_0") == len(one)
    # a file whose first row is an empty one is still recognised as DCASE
    assert detect_format("dev_0005.flac\t\t\t\ndev_0006.flac\t1\t2\tDog\n") == "dcase"
    assert list(loads_annotations("a.wav\n", "dcase").attrs["recordings"]) == ["a.wav"]


def test_a_weak_row_in_an_events_file_says_where_it_belongs() -> None:
    with pytest.raises(FormatError, match=r"line 3: .*no onset and offset.*weak-label"):
        loads_annotations("filename\tonset\toffset\tevent_label\na\t0\t1\tx\nb\t\t\tDog\n",
                          "dcase", name="strong.tsv")


def test_convert_keeps_the_empty_rows_and_reads_back_the_same_in_pandas(
    tmp_path: Path, capsys
) -> None:
    out = tmp_path / "copy.tsv"
    assert main(["convert", str(REFERENCE), "--to", "dcase", "--out", str(out)]) == 0
    assert "events ->" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pandas_rows(out), pandas_rows(REFERENCE))
    for name in EMPTY:
        assert f"\n{name}\t\t\t\n" in out.read_text(encoding="utf-8")
    # through another format and back: Label Studio keeps the events; the empty files
    # come back when the writer is told which recordings the file covers
    events = read_annotations(REFERENCE)
    back = loads_annotations(dumps_annotations(events, "label_studio"), "label_studio")
    text = dumps_annotations(back, "dcase", recordings=events.attrs["recordings"])
    pd.testing.assert_frame_equal(pd.read_csv(_text(tmp_path, text), sep="\t"),
                                  pandas_rows(REFERENCE))


def _text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "text.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def test_quoted_labels_read_back_identically_in_pandas_csv_and_here(tmp_path: Path) -> None:
    events = make_events([{"recording": f"r{i}.wav", "onset": float(i), "offset": i + 0.5,
                           "label": label} for i, label in enumerate(QUOTED)])
    names = [*events["recording"], "none.wav"]
    path = write_annotations(events, tmp_path / "quoted.tsv", recordings=names)
    frame = pd.read_csv(path, sep="\t", keep_default_na=False)
    assert list(frame["event_label"]) == [*QUOTED, ""]
    assert list(frame["filename"]) == names
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert [row[3] for row in rows[1:]] == [*QUOTED, ""]
    back = read_annotations(path)
    assert list(back["label"]) == QUOTED
    assert back.attrs["recordings"][-1] == "none.wav"
    # a file written by pandas (or anything using csv quoting) reads the same here
    pandas_path = tmp_path / "by_pandas.tsv"
    pd.DataFrame({"filename": ["a.wav"] * len(QUOTED), "onset": 0.0, "offset": 1.0,
                  "event_label": QUOTED}).to_csv(pandas_path, sep="\t", index=False)
    assert list(read_annotations(pandas_path)["label"]) == QUOTED


def test_weak_labels_with_empty_rows(tmp_path: Path) -> None:
    weak = read_weak_labels(WEAK)
    frame = pd.read_csv(WEAK, sep="\t")
    assert list(weak) == list(frame["filename"])
    for name, labels in zip(frame["filename"], frame["event_labels"]):
        assert weak[name] == ([] if isinstance(labels, float) else labels.split(","))
    assert all(weak[name] == [] for name in EMPTY)
    assert "犬 (chien)" in {label for labels in weak.values() for label in labels}
    path = write_weak_labels({**weak, 'say "hi"': ["a"]}, tmp_path / "weak.tsv")
    assert read_weak_labels(path) == {**weak, 'say "hi"': ["a"]}
    again = pd.read_csv(path, sep="\t")
    pd.testing.assert_frame_equal(again.iloc[:-1], frame)
    assert again["filename"].iloc[-1] == 'say "hi"'


def test_convert_of_a_file_without_recordings_names_them(tmp_path: Path, capsys) -> None:
    source = tmp_path / "night_01.txt"
    source.write_text('0.5\t1.5\t"quoted" voice\n2\t3\tVogel ü\n', encoding="utf-8")
    out = tmp_path / "a.tsv"
    assert main(["convert", str(source), "--to", "dcase", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert "'night_01' (the file's stem" in said and "--recording" in said
    frame = pd.read_csv(out, sep="\t")
    assert list(frame["filename"]) == ["night_01", "night_01"]
    assert list(frame["event_label"]) == ['"quoted" voice', "Vogel ü"]
    assert main(["convert", str(source), "--to", "raven", "--out", str(tmp_path / "b.txt"),
                 "--recording", "night_01.wav"]) == 0
    assert "'night_01.wav' (given with --recording)" in capsys.readouterr().out
    assert set(read_annotations(tmp_path / "b.txt", "raven")["recording"]) == {"night_01.wav"}


def test_project_import_accepts_files_listed_without_events(tmp_path: Path, capsys) -> None:
    from panns_core.annotations.exchange import plan_import
    from panns_core.annotations.store import ProjectStore

    store = ProjectStore(tmp_path / "p.panns")
    try:
        for name in ("dev_0004.flac", "dev_0005.flac"):
            sf.write(tmp_path / name, np.zeros(16000, np.float32), 16000)
            store.add_recording(tmp_path / name)
        tsv = tmp_path / "meta.tsv"
        tsv.write_text("filename\tonset\toffset\tevent_label\n"
                       "dev_0004.flac\t0.1\t0.6\tSprache ü\ndev_0005.flac\t\t\t\n",
                       encoding="utf-8")
        (item,) = plan_import(store, [tsv])
        assert item.error is None and item.n_events == 1
    finally:
        store.close()


# -- figures: panns-sed evaluate against sed_eval itself ----------------------------------


def _sed_eval():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sed_eval
    return sed_eval


def _sed_eval_figures(reference, estimated, files) -> dict:
    """sed_eval's standard loop: every file of the reference, event- and segment-based."""
    sed_eval = _sed_eval()
    labels = sorted({e["event_label"] for e in [*reference, *estimated] if e.get("event_label")})
    event = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=labels, t_collar=0.2, percentage_of_length=0.2)
    segment = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=labels, time_resolution=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for name in files:
            ref = reference.filter(filename=name) if hasattr(reference, "filter") else [
                e for e in reference if e["filename"] == name]
            est = estimated.filter(filename=name) if hasattr(estimated, "filter") else [
                e for e in estimated if e["filename"] == name]
            event.evaluate(reference_event_list=ref, estimated_event_list=est)
            segment.evaluate(reference_event_list=ref, estimated_event_list=est)
        return {"event": event.results(), "segment": segment.results()}


def _desed_events(path: Path) -> tuple[list[dict], list[str]]:
    """As the DESED baseline loads metadata: pandas, one ``{"filename"}`` item per empty file."""
    frame = pd.read_csv(path, sep="\t")
    events: list[dict] = []
    for name, group in frame.groupby("filename", sort=False):
        rows = group[group["event_label"].notna()]
        if len(rows):
            events.extend(rows.to_dict("records"))
        else:
            events.append({"filename": name})
    return events, list(dict.fromkeys(frame["filename"]))


def _compare(ours: dict, theirs: dict) -> None:
    for kind in ("event", "segment"):
        mine, expected = ours[kind], theirs[kind]
        overall = expected["overall"]
        pairs = [
            (mine["overall"]["f1"], overall["f_measure"]["f_measure"]),
            (mine["overall"]["precision"], overall["f_measure"]["precision"]),
            (mine["overall"]["recall"], overall["f_measure"]["recall"]),
            (mine["overall"]["error_rate"], overall["error_rate"]["error_rate"]),
            (mine["overall"]["deletion_rate"], overall["error_rate"]["deletion_rate"]),
            (mine["overall"]["insertion_rate"], overall["error_rate"]["insertion_rate"]),
            (mine["macro_f1"], expected["class_wise_average"]["f_measure"]["f_measure"]),
        ]
        for label, block in expected["class_wise"].items():
            pairs.append((mine["class_wise"][label]["f1"], block["f_measure"]["f_measure"]))
            pairs.append((mine["class_wise"][label]["error_rate"],
                          block["error_rate"]["error_rate"]))
        for got, want in pairs:
            if want is None or (isinstance(want, float) and math.isnan(want)):
                assert got is None, kind
            else:
                assert got == pytest.approx(want, abs=1e-12), kind


def _evaluate_json(capsys, reference: Path, estimated: Path) -> dict:
    assert main(["evaluate", "--reference", str(reference), "--estimated", str(estimated),
                 "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_evaluate_reproduces_sed_eval_on_desed_shaped_metadata(capsys) -> None:
    ours = _evaluate_json(capsys, REFERENCE, ESTIMATED)
    reference, files = _desed_events(REFERENCE)
    estimated, _ = _desed_events(ESTIMATED)
    theirs = _sed_eval_figures(reference, estimated, files)
    _compare(ours, theirs)
    # the empty files were evaluated: their estimated events are insertions
    assert theirs["event"]["overall"]["error_rate"]["insertion_rate"] > 0
    assert ours["event"]["overall"]["n_ref"] == int(pandas_rows(REFERENCE)["onset"].notna().sum())


def test_evaluate_reproduces_sed_eval_read_by_its_own_reader(tmp_path: Path, capsys) -> None:
    """sed_eval.io.load_event_list (dcase_util) reads header-less .txt event lists."""
    sed_eval = _sed_eval()
    copies = {}
    for path in (REFERENCE, ESTIMATED):
        lines = path.read_text(encoding="utf-8").splitlines()[1:]
        copies[path] = tmp_path / (path.stem + ".txt")
        copies[path].write_text("\n".join(lines) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = sed_eval.io.load_event_list(str(copies[REFERENCE]))
        estimated = sed_eval.io.load_event_list(str(copies[ESTIMATED]))
    assert set(EMPTY) <= set(reference.unique_files)
    theirs = _sed_eval_figures(reference, estimated, reference.unique_files)
    _compare(_evaluate_json(capsys, copies[REFERENCE], copies[ESTIMATED]), theirs)
    _compare(_evaluate_json(capsys, REFERENCE, ESTIMATED), theirs)


def test_evaluate_reads_a_reference_of_only_empty_rows(tmp_path: Path, capsys) -> None:
    reference = tmp_path / "silent.tsv"
    reference.write_text("filename\tonset\toffset\tevent_label\nq.wav\t\t\t\n")
    shutil.copy(ESTIMATED, tmp_path / "est.tsv")
    ours = _evaluate_json(capsys, reference, tmp_path / "est.tsv")
    assert ours["event"]["overall"]["n_ref"] == 0


def test_export_of_chosen_recordings_lists_those_without_events(tmp_path: Path) -> None:
    from panns_core.annotations.exchange import plan_export, write_export
    from panns_core.annotations.store import ProjectStore

    store = ProjectStore(tmp_path / "p.panns")
    try:
        ids = []
        for name in ("a.wav", "b.wav", "c.wav"):
            sf.write(tmp_path / name, np.zeros(16000, np.float32), 16000)
            ids.append(store.add_recording(tmp_path / name))
        store.add_events(make_events([{"recording": str(tmp_path / "b.wav"), "onset": 0.1,
                                       "offset": 0.5, "label": '"quoted" voice'}]))
        (path,) = write_export(plan_export(store, "dcase", tmp_path / "out.tsv",
                                           recordings=ids, per_recording=False))
    finally:
        store.close()
    frame = pd.read_csv(path, sep="\t")
    assert list(frame["filename"]) == ["a.wav", "b.wav", "c.wav"]
    assert list(frame["event_label"].fillna("")) == ["", '"quoted" voice', ""]


def test_psds_with_a_reference_listing_files_without_events(tmp_path: Path, capsys) -> None:
    """Score tables of a file the reference lists without events: only false positives."""
    reference = tmp_path / "reference.tsv"
    reference.write_text(
        "filename\tonset\toffset\tevent_label\n"
        "a.wav\t1.0\t3.0\tSprache ü\na.wav\t5.0\t6.0\tCattle, bovinae\n"
        "b.wav\t\t\t\n", encoding="utf-8")
    scores = tmp_path / "scores"
    scores.mkdir()
    edges = np.arange(0.0, 10.01, 0.5)
    active = {"a": [(1.0, 3.0, 0, 0.9), (5.0, 6.0, 1, 0.9)], "b": [(2.0, 3.0, 0, 0.6)]}
    for name, spans in active.items():
        table = np.full((len(edges) - 1, 2), 0.05)
        for on, off, column, value in spans:
            table[(edges[:-1] >= on) & (edges[:-1] < off), column] = value
        frame = pd.DataFrame(table, columns=["Sprache ü", "Cattle, bovinae"])
        frame.insert(0, "offset", edges[1:])
        frame.insert(0, "onset", edges[:-1])
        frame.to_csv(scores / f"{name}.tsv", sep="\t", index=False)
    durations = tmp_path / "durations.tsv"
    durations.write_text("filename\tduration\na.wav\t10.0\nb.wav\t10.0\n")
    assert main(["evaluate", "--reference", str(reference), "--scores", str(scores),
                 "--durations", str(durations), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    # sed_scores_eval itself, given b as a file without events
    from sed_scores_eval import intersection_based
    from sed_scores_eval.base_modules.io import read_sed_scores

    from panns_core.evaluation.psds import PSDS_SCENARIOS, sed_scores_eval_writable

    sed_scores_eval_writable()
    truth = {"a": [[1.0, 3.0, "Sprache ü"], [5.0, 6.0, "Cattle, bovinae"]], "b": []}
    tables = {name: read_sed_scores(scores / f"{name}.tsv") for name in ("a", "b")}
    for name, params in PSDS_SCENARIOS.items():
        value, *_ = intersection_based.psds(scores=tables, ground_truth=truth,
                                            audio_durations={"a": 10.0, "b": 10.0}, **params)
        assert result["psds"][name]["psds"] == pytest.approx(float(value), abs=1e-12)
