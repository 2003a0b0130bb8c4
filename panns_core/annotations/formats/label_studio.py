"""Label Studio JSON: the full export (a list of tasks) and the JSON-MIN export.

Full export: each task has ``data`` (the audio file, usually ``data.audio``),
``annotations`` (human results) and ``predictions`` (model results, with
``model_version`` and scores). An audio region is a result of type ``labels`` whose
``value`` is ``{start, end, labels: [...]}`` (seconds); a region with several labels
is one event per label. Region ``score`` is the confidence; ``meta.text`` is the note;
``meta.panns`` keeps this program's status and source of a reviewed event (accepted,
edited, rejected, added by a person) and an event's frequency band (``low_freq`` /
``high_freq`` in Hz: Label Studio's audio regions are time spans only), so they come back
on import.

Written: one task per recording; proposed model events as predictions (one per
model), all others as one annotation. Any text can be held (JSON escapes it).
"""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd

from ...errors import FormatError
from ...events import ADDED, HUMAN, PROPOSED, STATUSES
from ._common import check_events, check_times, text_field, to_frame

NAME = "Label Studio JSON"


def _fail(name: str, where: str, problem: str) -> FormatError:
    return FormatError(f"{name}: {where}: {problem}")


def _number(value: Any, name: str, where: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(name, where, f"{what} {value!r} is not a number.")
    try:
        number = float(value)
    except OverflowError:
        raise _fail(name, where, f"{what} is too large.") from None
    if not math.isfinite(number):
        raise _fail(name, where, f"{what} {value!r} is not finite.")
    return number


def _audio(task: dict, name: str, where: str) -> str:
    data = task.get("data", task)
    if not isinstance(data, dict):
        raise _fail(name, where, "'data' is not an object.")
    audio = data.get("audio")
    if audio is None:
        audio = next((v for v in data.values() if isinstance(v, str)), "")
    if not isinstance(audio, str):
        raise _fail(name, where, "the audio reference is not text.")
    return audio


def _regions(
    results: Any, name: str, where: str, recording: str, source: str, status: str,
    default_score: float,
) -> list[dict]:
    if not isinstance(results, list):
        raise _fail(name, where, "'result' is not a list.")
    rows: list[dict] = []
    for k, result in enumerate(results):
        here = f"{where}, result {k}"
        if not isinstance(result, dict):
            raise _fail(name, here, "not an object.")
        value = result.get("value", result)
        if not isinstance(value, dict):
            raise _fail(name, here, "'value' is not an object.")
        if "start" not in value or "end" not in value:
            continue  # not an audio region (e.g. a text area or a choice)
        onset = _number(value["start"], name, here, "start")
        offset = _number(value["end"], name, here, "end")
        try:
            check_times(onset, offset, name, None)
        except FormatError as error:
            raise _fail(name, here, str(error).split(": ", 1)[-1]) from None
        labels = value.get("labels", [""])
        if isinstance(labels, str):
            labels = [labels]
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise _fail(name, here, "'labels' is not a list of text.")
        score = result.get("score", value.get("score"))
        confidence = default_score if score is None else _number(score, name, here, "score")
        meta = result.get("meta")
        note, row_status, row_source = "", status, source
        band = {"low_freq": math.nan, "high_freq": math.nan}
        if isinstance(meta, dict):
            text = meta.get("text", "")
            if isinstance(text, list):
                if not all(isinstance(x, str) for x in text):
                    raise _fail(name, here, "'meta.text' is not text.")
                text = "\n".join(text)
            if not isinstance(text, str):
                raise _fail(name, here, "'meta.text' is not text.")
            note = text
            kept = meta.get("panns")
            if isinstance(kept, dict):
                if kept.get("status") in STATUSES:
                    row_status = kept["status"]
                if isinstance(kept.get("source"), str) and kept["source"]:
                    row_source = kept["source"]
                for key in band:
                    if kept.get(key) is not None:
                        band[key] = _number(kept[key], name, here, f"meta.panns.{key}")
        for label in labels or [""]:
            rows.append(
                {"recording": recording, "onset": onset, "offset": offset, "label": label,
                 "confidence": confidence, "source": row_source, "status": row_status,
                 "note": note, **band}
            )
    return rows


def read(text: str, name: str) -> pd.DataFrame:
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as error:
        line = getattr(error, "lineno", None)
        at = f", line {line}" if line else ""
        raise FormatError(f"{name}{at}: not valid JSON ({error}).") from None
    tasks = document if isinstance(document, list) else [document]
    rows: list[dict] = []
    for i, task in enumerate(tasks):
        where = f"task {i}"
        if not isinstance(task, dict):
            raise _fail(name, where, "a task must be a JSON object.")
        recording = _audio(task, name, where)
        if "annotations" in task or "predictions" in task or "completions" in task:
            for key in ("annotations", "completions"):
                annotations = task.get(key, [])
                if not isinstance(annotations, list):
                    raise _fail(name, where, f"'{key}' is not a list.")
                for j, annotation in enumerate(annotations):
                    here = f"{where}, {key[:-1]} {j}"
                    if not isinstance(annotation, dict):
                        raise _fail(name, here, "not an object.")
                    if annotation.get("was_cancelled"):
                        continue
                    rows += _regions(annotation.get("result", []), name, here, recording,
                                     HUMAN, ADDED, math.nan)
            predictions = task.get("predictions", [])
            if not isinstance(predictions, list):
                raise _fail(name, where, "'predictions' is not a list.")
            for j, prediction in enumerate(predictions):
                here = f"{where}, prediction {j}"
                if not isinstance(prediction, dict):
                    raise _fail(name, here, "not an object.")
                model = prediction.get("model_version") or "label-studio"
                score = prediction.get("score")
                default = math.nan if score is None else _number(score, name, here, "score")
                rows += _regions(prediction.get("result", []), name, here, recording,
                                 text_field(model), PROPOSED, default)
        else:
            # JSON-MIN: regions under a key of the task itself (usually "label").
            for key, value in task.items():
                if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                    rows += _regions(value, name, f"{where}, {key}", recording, HUMAN, ADDED,
                                     math.nan)
    return to_frame(rows)


def write(events: pd.DataFrame) -> str:
    frame = check_events(events)
    tasks: list[dict] = []
    by_recording: dict[str, list] = {}
    for row in frame.itertuples(index=False):
        by_recording.setdefault(text_field(row.recording), []).append(row)
    for task_id, (recording, rows) in enumerate(by_recording.items(), start=1):
        human: list[dict] = []
        predicted: dict[str, list[dict]] = {}
        for k, row in enumerate(rows):
            value = {"start": float(row.onset), "end": float(row.offset), "channel": 0,
                     "labels": [text_field(row.label)]}
            result: dict[str, Any] = {
                "id": f"e{task_id}_{k}", "from_name": "label", "to_name": "audio",
                "type": "labels", "value": value,
            }
            if not math.isnan(row.confidence):
                result["score"] = float(row.confidence)
            note = text_field(row.note)
            meta: dict[str, Any] = {"text": [note]} if note else {}
            source = text_field(row.source)
            kept: dict[str, Any] = {}
            if row.status != PROPOSED and (row.status != ADDED or source != HUMAN):
                kept = {"status": str(row.status), "source": source}
            for key in ("low_freq", "high_freq"):
                value = float(getattr(row, key))
                if not math.isnan(value):
                    kept[key] = value
            if kept:
                meta["panns"] = kept
            if meta:
                result["meta"] = meta
            if row.status == PROPOSED and source != HUMAN:
                result["origin"] = "prediction"
                predicted.setdefault(source, []).append(result)
            else:
                result["origin"] = "manual"
                human.append(result)
        task: dict[str, Any] = {"id": task_id, "data": {"audio": recording}, "annotations": [],
                                "predictions": []}
        if human:
            task["annotations"].append({"id": task_id, "result": human, "was_cancelled": False})
        for model, results in predicted.items():
            task["predictions"].append({"model_version": model, "result": results})
        tasks.append(task)
    return json.dumps(tasks, ensure_ascii=False, indent=1) + "\n"
