"""A process killed (SIGKILL) in the middle of a burst of edits loses nothing it had
committed, and leaves a database that opens and passes the integrity check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from panns_core.annotations.store import ProjectStore

CHILD = textwrap.dedent(
    """
    import sys
    from panns_core.annotations.store import AddEvents, DeleteEvents, ProjectStore, relabel

    store = ProjectStore(sys.argv[1], create=False)
    rec = store.recordings()[0].id
    step = 0
    while True:
        step += 1
        undo = store.apply(AddEvents.from_records(
            [{"recording_id": rec, "onset": step * 0.01, "offset": step * 0.01 + 0.5,
              "label": f"burst {step}"} for _ in range(1 + step % 5)]))
        print("add", *undo.ids, flush=True)
        first = undo.ids[0]
        store.apply(relabel([first], f"edited {step}"))
        print("label", first, f"edited {step}", flush=True)
        if len(undo.ids) > 1:
            store.apply(DeleteEvents(undo.ids[-1:]))
            print("delete", undo.ids[-1], flush=True)
    """
)


@pytest.mark.slow
def test_sigkill_during_edit_burst_keeps_every_committed_edit(tmp_path: Path) -> None:
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(8000, np.float32), 8000)
    project = tmp_path / "p.panns"
    with ProjectStore(project) as store:
        store.add_recording(wav)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(project)], stdout=subprocess.PIPE, text=True, env=env
    )
    reported: list[str] = []
    try:
        assert child.stdout is not None
        while len(reported) < 600:
            line = child.stdout.readline()
            assert line, "the child stopped before the kill"
            reported.append(line.split())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    added: set[int] = set()
    deleted: set[int] = set()
    labels: dict[int, str] = {}
    for kind, *rest in reported:
        if kind == "add":
            added.update(int(i) for i in rest)
        elif kind == "delete":
            deleted.add(int(rest[0]))
        else:
            labels[int(rest[0])] = " ".join(rest[1:])
    with ProjectStore(project, create=False) as store:
        assert store.integrity_check() == "ok"
        events = store.events().set_index("id")
    present = set(events.index)
    assert added - deleted <= present  # every reported add that was not deleted is there
    assert not deleted & present  # every reported delete happened
    for event_id, label in labels.items():
        assert events.loc[event_id, "label"] == label
    # the child may have committed one more edit after its last report, never fewer
    assert len(present - added) <= 5
