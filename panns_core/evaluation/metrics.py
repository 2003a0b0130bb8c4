"""Evaluation of detected events against a reference: sed_eval and sed_scores_eval.

* Event-based F1 and error rate (sed_eval ``EventBasedMetrics``): an estimated
  event matches a reference event of the same label when its onset is within
  ``onset_collar`` (200 ms) and its offset within max(200 ms, 20 % of the
  reference event's length); optimal (Hungarian) matching.
* Segment-based F1 and error rate (sed_eval ``SegmentBasedMetrics``) on 1 s
  segments; a recording is evaluated over its duration when known, else up to
  its last event.
* PSDS, DCASE scenarios 1 and 2, from framewise score tables in the
  sed_scores_eval layout (``onset offset <class>...``, one TSV per recording)
  through ``sed_scores_eval.intersection_based.psds``.

Every function takes events in the :mod:`panns_core.events` schema (only
``recording``, ``onset``, ``offset`` and ``label`` are used) and returns plain
dicts of floats, ready for JSON. Recordings are matched by file name without
extension, as sed_scores_eval does, so ``dir/a.wav``, ``a.wav`` and ``a`` are the
same recording. sed_eval and sed_scores_eval are imported inside the functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FormatError

ONSET_COLLAR = 0.2
OFFSET_COLLAR_RATE = 0.2
SEGMENT_SECONDS = 1.0

#: DCASE 2021-2023 task 4 PSDS settings.
PSDS_SCENARIOS: dict[str, dict[str, Any]] = {
    "psds1": {
        "dtc_threshold": 0.7,
        "gtc_threshold": 0.7,
        "cttc_threshold": None,
        "alpha_ct": 0.0,
        "alpha_st": 1.0,
        "max_efpr": 100.0,
    },
    "psds2": {
        "dtc_threshold": 0.1,
        "gtc_threshold": 0.1,
        "cttc_threshold": 0.3,
        "alpha_ct": 0.5,
        "alpha_st": 1.0,
        "max_efpr": 100.0,
    },
}


def _sed_scores_eval_writable() -> None:
    """Work around sed_scores_eval 0.0.4 under pandas 3 copy-on-write.

    Its Cython ``onset_offset_curves`` wants writable buffers, but pandas 3 hands out
    read-only views from ``DataFrame.to_numpy()`` ("buffer source array is
    read-only"). Wrap the one call site so the arrays are copied when read-only.
    """
    from sed_scores_eval.base_modules import statistics

    original = statistics.onset_offset_curves
    if getattr(original, "_writable_inputs", False):
        return

    def onset_offset_curves(scores, timestamps, change_point_candidates=None):
        return original(
            np.require(scores, requirements="W"),
            np.require(timestamps, requirements="W"),
            change_point_candidates,
        )

    onset_offset_curves._writable_inputs = True  # type: ignore[attr-defined]
    statistics.onset_offset_curves = onset_offset_curves


def audio_id(recording: str) -> str:
    """The key a recording is matched by: its file name without extension."""
    name = PurePath(str(recording).replace("\\", "/")).name
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and ext.isalnum() and len(ext) <= 5 else name


def _quiet_sed_eval():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sed_eval
    return sed_eval


def _clean(events: pd.DataFrame, name: str) -> pd.DataFrame:
    missing = [c for c in ("onset", "offset", "label") if c not in events.columns]
    if missing:
        raise FormatError(f"{name} events lack the columns {missing}; give onset, offset, label.")
    frame = events.copy()
    if "recording" not in frame.columns:
        frame["recording"] = ""
    frame = frame[frame["label"].notna() & (frame["label"].astype(str) != "")]
    frame = frame.assign(
        audio_id=frame["recording"].astype(str).map(audio_id),
        onset=frame["onset"].astype(float),
        offset=frame["offset"].astype(float),
        label=frame["label"].astype(str),
    )
    bad = frame[~(frame["offset"] > frame["onset"])]
    if len(bad):
        row = bad.iloc[0]
        raise FormatError(
            f"{name} event {row['label']!r} in {row['recording']!r} has offset "
            f"{row['offset']} <= onset {row['onset']}; fix or drop it."
        )
    return frame


def _event_dicts(frame: pd.DataFrame) -> list[dict]:
    return [
        {"event_label": lab, "onset": float(on), "offset": float(off), "filename": rec}
        for rec, on, off, lab in zip(
            frame["audio_id"], frame["onset"], frame["offset"], frame["label"]
        )
    ]


def _nan_to_none(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _summarise(results: dict, reference: pd.DataFrame, estimated: pd.DataFrame) -> dict:
    """sed_eval's nested result dict -> our flat dict of floats (NaN -> None)."""

    def one(block: dict) -> dict:
        f = block.get("f_measure", {})
        e = block.get("error_rate", {})
        return {
            "f1": _nan_to_none(f.get("f_measure", float("nan"))),
            "precision": _nan_to_none(f.get("precision", float("nan"))),
            "recall": _nan_to_none(f.get("recall", float("nan"))),
            "error_rate": _nan_to_none(e.get("error_rate", float("nan"))),
            "substitution_rate": _nan_to_none(e.get("substitution_rate", float("nan"))),
            "deletion_rate": _nan_to_none(e.get("deletion_rate", float("nan"))),
            "insertion_rate": _nan_to_none(e.get("insertion_rate", float("nan"))),
        }

    overall = one(results["overall"])
    overall["n_ref"] = len(reference)
    overall["n_sys"] = len(estimated)
    class_wise = {}
    for label, block in results["class_wise"].items():
        entry = one(block)
        entry.pop("substitution_rate", None)
        entry["n_ref"] = int((reference["label"] == label).sum())
        entry["n_sys"] = int((estimated["label"] == label).sum())
        class_wise[label] = entry
    macro = one(results["class_wise_average"])
    return {
        "overall": overall,
        "class_wise": class_wise,
        "macro_f1": macro["f1"],
        "macro_error_rate": macro["error_rate"],
    }


def _labels(ref: pd.DataFrame, est: pd.DataFrame, labels: Iterable[str] | None) -> list[str]:
    if labels is not None:
        return list(dict.fromkeys(labels))
    return sorted(set(ref["label"]) | set(est["label"]))


def event_based(
    reference: pd.DataFrame,
    estimated: pd.DataFrame,
    *,
    labels: Iterable[str] | None = None,
    onset_collar: float = ONSET_COLLAR,
    offset_collar_rate: float = OFFSET_COLLAR_RATE,
) -> dict:
    """Event-based F1 / error rate, overall (micro), per class and macro-averaged.

    ``labels`` restricts and orders the classes (default: every label seen);
    estimated events of other labels are ignored.
    """
    sed_eval = _quiet_sed_eval()
    ref, est = _clean(reference, "reference"), _clean(estimated, "estimated")
    classes = _labels(ref, est, labels)
    ref, est = ref[ref["label"].isin(classes)], est[est["label"].isin(classes)]
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=classes,
        t_collar=onset_collar,
        percentage_of_length=offset_collar_rate,
        evaluate_onset=True,
        evaluate_offset=True,
        event_matching_type="optimal",
    )
    with warnings.catch_warnings():  # "mean of empty slice" for classes without events
        warnings.simplefilter("ignore", RuntimeWarning)
        for key in sorted(set(ref["audio_id"]) | set(est["audio_id"])):
            metric.evaluate(
                reference_event_list=_event_dicts(ref[ref["audio_id"] == key]),
                estimated_event_list=_event_dicts(est[est["audio_id"] == key]),
            )
        results = metric.results()
    return _summarise(results, ref, est)


def segment_based(
    reference: pd.DataFrame,
    estimated: pd.DataFrame,
    *,
    labels: Iterable[str] | None = None,
    segment_seconds: float = SEGMENT_SECONDS,
    durations: Mapping[str, float] | None = None,
) -> dict:
    """Segment-based F1 / error rate on ``segment_seconds`` segments.

    ``durations`` (recording -> seconds) sets each recording's evaluated length;
    recordings listed there without any event count too (their estimated
    events are insertions; an empty one adds true-negative segments).
    """
    sed_eval = _quiet_sed_eval()
    ref, est = _clean(reference, "reference"), _clean(estimated, "estimated")
    classes = _labels(ref, est, labels)
    ref, est = ref[ref["label"].isin(classes)], est[est["label"].isin(classes)]
    lengths = {audio_id(k): float(v) for k, v in (durations or {}).items()}
    metric = sed_eval.sound_event.SegmentBasedMetrics(
        event_label_list=classes, time_resolution=segment_seconds
    )
    for key in sorted(set(ref["audio_id"]) | set(est["audio_id"]) | set(lengths)):
        r, e = ref[ref["audio_id"] == key], est[est["audio_id"] == key]
        length = lengths.get(key)
        if length is None:
            length = float(max([0.0, *r["offset"], *e["offset"]]))
        if length <= 0:
            continue
        metric.evaluate(
            reference_event_list=_event_dicts(r),
            estimated_event_list=_event_dicts(e),
            evaluated_length_seconds=length,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results = metric.results()
    return _summarise(results, ref, est)


def evaluate_events(
    reference: pd.DataFrame,
    estimated: pd.DataFrame,
    *,
    labels: Iterable[str] | None = None,
    durations: Mapping[str, float] | None = None,
) -> dict:
    """``{"event": event_based(...), "segment": segment_based(...)}`` with the defaults."""
    return {
        "event": event_based(reference, estimated, labels=labels),
        "segment": segment_based(reference, estimated, labels=labels, durations=durations),
    }


# --------------------------------------------------------------------------- PSDS


def merge_overlapping(events: pd.DataFrame) -> pd.DataFrame:
    """Join events of the same recording and label that overlap or touch.

    sed_scores_eval refuses ground truth with connected same-class events.
    """
    frame = _clean(events, "reference")
    rows = []
    for (rec, label), group in frame.groupby(["audio_id", "label"], sort=True):
        current: list[float] | None = None
        for on, off in sorted(zip(group["onset"], group["offset"])):
            if current is not None and on <= current[1]:
                current[1] = max(current[1], off)
            else:
                if current is not None:
                    rows.append((rec, current[0], current[1], label))
                current = [on, off]
        if current is not None:
            rows.append((rec, current[0], current[1], label))
    return pd.DataFrame(rows, columns=["recording", "onset", "offset", "label"])


def ground_truth_dict(events: pd.DataFrame, audio_ids: Iterable[str] = ()) -> dict:
    """Events -> sed_scores_eval ground truth ``{audio_id: [[onset, offset, label], ...]}``."""
    merged = merge_overlapping(events)
    truth: dict[str, list] = {key: [] for key in audio_ids}
    for rec, on, off, label in merged.itertuples(index=False):
        truth.setdefault(rec, []).append([float(on), float(off), label])
    return truth


def read_score_tables(directory: str | Path) -> dict[str, pd.DataFrame]:
    """Read a directory of sed_scores_eval score TSVs (``<audio_id>.tsv`` each)."""
    from sed_scores_eval.base_modules.io import read_sed_scores

    directory = Path(directory)
    if not directory.is_dir():
        raise FormatError(f"{directory} is not a directory of score TSVs; pass --scores DIR.")
    files = sorted(p for p in directory.iterdir() if p.suffix == ".tsv")
    if not files:
        raise FormatError(f"{directory} holds no .tsv score files (one per recording).")
    tables = {}
    for path in files:
        try:
            tables[path.stem] = read_sed_scores(path)
        except (ValueError, KeyError, pd.errors.ParserError) as error:
            raise FormatError(
                f"{path} is not a score table 'onset offset <class>...': {error}"
            ) from error
    return tables


def psds(
    scores: Mapping[str, pd.DataFrame] | str | Path,
    reference: pd.DataFrame,
    durations: Mapping[str, float],
    *,
    scenarios: Iterable[str] = ("psds1", "psds2"),
) -> dict:
    """PSDS for each DCASE scenario: ``{name: {"psds": x, "class_wise": {...}}}``.

    ``scores``: ``{audio_id: score DataFrame}`` or a directory of score TSVs.
    Reference labels missing from the score columns are an error; score columns
    without reference events are evaluated (they can only add false positives).
    """
    from sed_scores_eval import intersection_based

    _sed_scores_eval_writable()
    tables = read_score_tables(scores) if isinstance(scores, str | Path) else dict(scores)
    tables = {audio_id(k): v for k, v in tables.items()}
    ids = sorted(tables)
    lengths = {audio_id(k): float(v) for k, v in durations.items()}
    missing = [k for k in ids if k not in lengths]
    if missing:
        raise FormatError(f"no duration for {missing[:5]}; list every scored recording.")
    truth = ground_truth_dict(reference, ids)
    extra = sorted(set(truth) - set(ids))
    if extra:
        raise FormatError(
            f"the reference has events for {extra[:5]} but there are no scores for them."
        )
    classes = [c for c in next(iter(tables.values())).columns if c not in ("onset", "offset")]
    unknown = sorted({e[2] for events in truth.values() for e in events} - set(classes))
    if unknown:
        raise FormatError(f"reference labels {unknown} have no column in the score tables.")
    out = {}
    for name in scenarios:
        params = PSDS_SCENARIOS[name]
        value, class_wise, *_ = intersection_based.psds(
            scores=tables,
            ground_truth=truth,
            audio_durations={k: lengths[k] for k in ids},
            **params,
        )
        out[name] = {
            "psds": float(value),
            "class_wise": {k: float(v) for k, v in class_wise.items()},
        }
    return out


# --------------------------------------------------------------------------- files


def _read_dcase(path: Path) -> pd.DataFrame:
    """Fallback reader: a DCASE TSV with ``filename onset offset event_label``."""
    try:
        frame = pd.read_csv(path, sep="\t", dtype={"filename": str, "event_label": str})
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise FormatError(f"{path}: not a tab-separated annotation file ({error}).") from error
    need = {"filename", "onset", "offset", "event_label"}
    if not need <= set(frame.columns):
        raise FormatError(
            f"{path}: expected the columns filename, onset, offset, event_label "
            f"(DCASE TSV), found {list(frame.columns)}."
        )
    return pd.DataFrame(
        {
            "recording": frame["filename"].astype(str),
            "onset": pd.to_numeric(frame["onset"], errors="coerce"),
            "offset": pd.to_numeric(frame["offset"], errors="coerce"),
            "label": frame["event_label"],
        }
    ).dropna(subset=["label"])


def read_events(path: str | Path) -> pd.DataFrame:
    """Read an annotation file in any format :mod:`panns_core.annotations.formats` knows."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path} does not exist; give an annotation file.")
    try:
        from ..annotations.formats import read_annotations
    except ImportError:
        return _read_dcase(path)
    return read_annotations(path)


def read_durations(path: str | Path) -> dict[str, float]:
    """A ``filename duration`` TSV -> {audio_id: seconds}."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, sep="\t")
    except (OSError, pd.errors.ParserError) as error:
        raise FormatError(f"{path}: cannot read durations ({error}).") from error
    if not {"filename", "duration"} <= set(frame.columns):
        raise FormatError(f"{path}: expected the columns filename, duration.")
    return {audio_id(f): float(d) for f, d in zip(frame["filename"], frame["duration"])}


def format_report(result: dict) -> str:
    """A plain-text table of an :func:`evaluate_events` (+ psds) result."""

    def fmt(x: float | None) -> str:
        return "   -  " if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:6.3f}"

    lines = []
    for kind in ("event", "segment"):
        if kind not in result:
            continue
        block = result[kind]
        o = block["overall"]
        lines.append(
            f"{kind}-based  F1 {fmt(o['f1'])}  P {fmt(o['precision'])}  R {fmt(o['recall'])}"
            f"  ER {fmt(o['error_rate'])}  (macro F1 {fmt(block['macro_f1'])})"
        )
        width = max([10, *(len(k) for k in block["class_wise"])])
        lines.append(f"  {'class':<{width}}     F1      P      R     ER   nref  nsys")
        for label, c in block["class_wise"].items():
            lines.append(
                f"  {label:<{width}} {fmt(c['f1'])} {fmt(c['precision'])} {fmt(c['recall'])}"
                f" {fmt(c['error_rate'])} {c['n_ref']:6d} {c['n_sys']:5d}"
            )
    for name in ("psds1", "psds2"):
        if name in result.get("psds", {}):
            lines.append(f"{name.upper()} {result['psds'][name]['psds']:.4f}")
    return "\n".join(lines)
