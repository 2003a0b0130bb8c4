"""A monkey at the keys: random sequences of real user actions on the real window.

:class:`Monkey` drives a :class:`~app.main_window.MainWindow` the way a person does:
the mouse on the events track and the waveform (timed drags, clicks, double-clicks),
keys to the focused widget (Delete, A, R, 1-9, Ctrl+Z, Ctrl+Shift+Z, Return, Ctrl+=),
the panels' own buttons and spin boxes (detection, post-processing, review), the
import and export dialogs, the events table's label editor, and closing and reopening
the project. Every choice comes from ``random.Random(seed)``, so a seed replays the
same session.

After every action :meth:`Monkey.check` asserts what a user relies on:

* the project file passes ``PRAGMA integrity_check`` and ``foreign_key_check``, read
  through a second, read-only connection (what a crash right now would leave);
* what that connection reads (committed rows) equals what the window shows: the
  document's events, the events table's rows and cells, the events track's drawing;
* nothing went wrong unexpectedly (no "Something unexpected went wrong" message and no
  exception escaping a Qt slot).

Before closing the project and at the end of a sequence, it undoes everything with
Ctrl+Z: the project must be as it was when the history began (events, labels,
recordings), and redoing everything with Ctrl+Shift+Z must give back the state before
the undo.

Used by tests/gui/test_monkey.py (fixed seeds, in CI) and benchmarks/monkey.py (an hour
of seeds). A failure raises :class:`MonkeyFailure` carrying the seed and the actions so
far (the replay recipe).
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from panns_core.data import resource_path

CTRL = Qt.KeyboardModifier.ControlModifier
SHIFT = Qt.KeyboardModifier.ShiftModifier
NO_MODS = Qt.KeyboardModifier.NoModifier
LEFT = Qt.MouseButton.LeftButton
NO_BUTTON = Qt.MouseButton.NoButton
MOVE_INTERVAL_MS = 15  # a person's mouse: moves some 8-16 ms apart (pyqtgraph drops < 10)
MODEL_NAME = "monkey-sed"
LABELS = ("Speech", "Dog", "Bird", "Car", "Music", "Rain", "Footsteps, walking")
UNEXPECTED = "Something unexpected went wrong"
EVENT_COLUMNS = ["id", "recording_id", "onset", "offset", "label", "confidence", "source",
                 "status", "note"]
SHOWN_COLUMNS = ["id", "onset", "offset", "label", "status", "source"]


class MonkeyFailure(AssertionError):
    """A check failed: ``seed``, ``step`` and the ``actions`` that led there."""

    def __init__(self, seed: int, step: int, actions: list[str], what: str) -> None:
        self.seed, self.step, self.actions, self.what = seed, step, list(actions), what
        recent = "\n  ".join(actions[-12:])
        super().__init__(f"monkey seed {seed}, step {step}: {what}\n"
                         f"last actions:\n  {recent}")


def recordings_for(folder: Path, corpus: Path | None = None) -> list[Path]:
    """The recordings the monkey opens: the shipped demo (20 s) and two 10-s soundscapes
    of the corpus (real sound) when it is there, copied into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [resource_path("demo.flac")]
    corpus = corpus or Path("/work/shared/corpus/soundscapes")
    for name in ("dev_0003.flac", "dev_0017.flac"):
        if (corpus / "audio" / name).is_file():
            sources.append(corpus / "audio" / name)
    out = []
    for source in sources:
        target = folder / source.name
        if not target.exists():
            shutil.copy(source, target)
        out.append(target)
    return out


def install_model(checkpoint: Path) -> None:
    """Import the deterministic-weights checkpoint into the (test's) model registry."""
    from panns_core.hub.installed import get_registry

    registry = get_registry()
    if registry.find(MODEL_NAME) is None:
        registry.import_checkpoint(str(checkpoint), MODEL_NAME)


def wait_until(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    import time

    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise TimeoutError("the window did not finish in time")
        QTest.qWait(10)


# ------------------------------------------------------------------------ input
def _send(widget, kind, pos: QPoint, button, buttons, modifiers=NO_MODS) -> None:
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button,
                        buttons, modifiers)
    QApplication.sendEvent(widget, event)


def drag(view, start: tuple[float, float], stop: tuple[float, float],
         modifiers=NO_MODS, steps: int = 5) -> None:
    """A person's drag (see tests/gui/conftest.py ``mouse_drag``)."""
    viewport = view.viewport()
    a = view.view_to_widget(*start).toPoint()
    b = view.view_to_widget(*stop).toPoint()
    _send(viewport, QEvent.Type.MouseMove, a, NO_BUTTON, NO_BUTTON, modifiers)
    QTest.qWait(MOVE_INTERVAL_MS)
    _send(viewport, QEvent.Type.MouseButtonPress, a, LEFT, LEFT, modifiers)
    for i in range(1, steps + 1):
        QTest.qWait(MOVE_INTERVAL_MS)
        _send(viewport, QEvent.Type.MouseMove, a + (b - a) * (i / steps), NO_BUTTON, LEFT,
              modifiers)
    QTest.qWait(MOVE_INTERVAL_MS)
    _send(viewport, QEvent.Type.MouseButtonRelease, b, LEFT, NO_BUTTON, modifiers)
    QApplication.processEvents()


def click(view, at: tuple[float, float], modifiers=NO_MODS, double: bool = False) -> None:
    viewport = view.viewport()
    p = view.view_to_widget(*at).toPoint()
    _send(viewport, QEvent.Type.MouseButtonPress, p, LEFT, LEFT, modifiers)
    _send(viewport, QEvent.Type.MouseButtonRelease, p, LEFT, NO_BUTTON, modifiers)
    if double:
        _send(viewport, QEvent.Type.MouseButtonDblClick, p, LEFT, LEFT, modifiers)
        _send(viewport, QEvent.Type.MouseButtonRelease, p, LEFT, NO_BUTTON, modifiers)
    QApplication.processEvents()


def key(window, qt_key, modifiers=NO_MODS) -> None:
    """A key press to the focused widget of the (activated) window, as a user types it."""
    if not window.isActiveWindow():
        window.activateWindow()
        window.raise_()
    target = QApplication.focusWidget() or window
    QTest.keyClick(target, qt_key, modifiers)
    QApplication.processEvents()


# ---------------------------------------------------------------- project state
def read_project(path: Path) -> dict:
    """What a second, read-only connection finds in the project file: the checks and the
    committed rows (events, labels, recordings)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10.0)
    try:
        integrity = [row[0] for row in con.execute("PRAGMA integrity_check")]
        foreign = con.execute("PRAGMA foreign_key_check").fetchall()
        events = pd.read_sql_query(
            'SELECT id, recording_id, onset, "offset", label, confidence, source, status, '
            "note FROM events ORDER BY id", con)
        labels = [tuple(r) for r in con.execute(
            "SELECT name, mid, colour, hotkey, position FROM labels ORDER BY position, name")]
        recordings = [tuple(r) for r in con.execute(
            "SELECT id, path FROM recordings ORDER BY id")]
    finally:
        con.close()
    return {"integrity": integrity, "foreign": foreign, "events": events,
            "labels": labels, "recordings": recordings}


def _events_equal(a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    """None when equal, else a short description of the first difference."""
    a = a.reset_index(drop=True)
    b = b.reset_index(drop=True)
    if list(a["id"]) != list(b["id"]):
        return (f"event ids differ: only in the first {sorted(set(a['id']) - set(b['id']))}"
                f", only in the second {sorted(set(b['id']) - set(a['id']))}")
    for column in a.columns:
        x, y = a[column], b[column]
        if column in ("onset", "offset", "confidence"):
            same = np.isclose(x.astype(float), y.astype(float), atol=1e-9, equal_nan=True)
        else:
            same = (x.astype(object).fillna("").astype(str)
                    == y.astype(object).fillna("").astype(str)).to_numpy()
        if not same.all():
            row = int(np.flatnonzero(~same)[0])
            return (f"column {column} of event {a['id'][row]}: {x[row]!r} != {y[row]!r}")
    return None


@dataclass
class Stats:
    actions: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    undo_checks: int = 0


class Monkey:
    """One seeded session on windows made by ``make_window(project_path)``."""

    def __init__(self, seed: int, workdir: Path, make_window: Callable[[Path], object],
                 close_window: Callable[[object], None], recordings: list[Path]) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.workdir = Path(workdir)
        self.exports = self.workdir / "exports"
        self.exports.mkdir(parents=True, exist_ok=True)
        self.project = self.workdir / f"monkey-{seed}.panns"
        self.make_window = make_window
        self.close_window = close_window
        self.recordings = list(recordings)
        self.window = None
        self.log: list[str] = []
        self.stats = Stats()
        self.exported: list[Path] = []
        self.slot_errors: list[str] = []
        self.start_state: dict | None = None

    # ------------------------------------------------------------------ running
    def run(self, n_actions: int) -> Stats:
        import pyqtgraph.debug

        old_hook, old_print = sys.excepthook, pyqtgraph.debug.printExc
        sys.excepthook = self._slot_error  # exceptions escaping Qt slots land here

        def print_exc(msg="", *args, **kwargs):  # pyqtgraph catches mouse handlers' errors
            self._slot_error(*sys.exc_info())
            old_print(msg, *args, **kwargs)

        pyqtgraph.debug.printExc = print_exc
        try:
            self._open()
            for _ in range(n_actions):
                self.step()
            self._undo_all_and_back("end of the sequence")
        finally:
            sys.excepthook = old_hook
            pyqtgraph.debug.printExc = old_print
            if self.window is not None:
                self.close_window(self.window)
                self.window = None
        return self.stats

    def _slot_error(self, kind, value, tb) -> None:
        self.slot_errors.append("".join(traceback.format_exception(kind, value, tb)))

    def fail(self, what: str) -> None:
        raise MonkeyFailure(self.seed, self.stats.actions, self.log, what)

    def step(self) -> None:
        actions = self.actions()
        names = list(actions)
        weights = [actions[n][0] for n in names]
        name = self.rng.choices(names, weights)[0]
        entry = actions[name][1]()
        self.log.append(f"{name}: {entry}" if entry else name)
        self.stats.actions += 1
        self.stats.by_kind[name] = self.stats.by_kind.get(name, 0) + 1
        self.check()

    def actions(self) -> dict[str, tuple[float, Callable[[], str | None]]]:
        doc = self.window.document
        has_rec = doc.recording is not None
        has_events = has_rec and len(doc.annotations) > 0
        has_scores = has_rec and doc.scores is not None
        running = self.window.panels["detection"].running
        reviewing = self.window.panels["review"].active
        table: dict[str, tuple[float, Callable[[], str | None]]] = {
            "open recording": (1.0 if has_rec else 20.0, self.open_recording),
        }
        if has_rec:
            table.update({
                "detect": (1.0, self.detect),
                "detect and keep working": (0.7, self.detect_in_background),
                "detect in all recordings": (0.3, self.detect_all_in_background),
                "add by drag": (5.0, self.add_by_drag),
                "add from time selection": (2.0, self.add_from_selection),
                "zoom or scroll": (1.5, self.zoom_or_scroll),
                "play or pause": (0.5, self.play_or_pause),
                "undo": (5.0, self.undo),
                "redo": (2.5, self.redo),
                "export": (0.7, self.export),
                "close and reopen": (0.5, self.close_and_reopen),
            })
        if running:
            table["cancel detection"] = (0.5, self.cancel_detection)
            table["wait for detection"] = (1.0, self.wait_for_detection)
        if has_events:
            table.update({
                "move by drag": (4.0, self.move_by_drag),
                "resize by drag": (4.0, self.resize_by_drag),
                "delete": (2.0, self.delete),
                "relabel with a digit": (2.0, self.relabel_digit),
                "relabel by double-click": (1.5, self.relabel_double_click),
                "relabel in the table": (1.0, self.relabel_in_table),
                "rename a label": (0.4, self.rename_label),
                "accept": (2.5, self.accept),
                "reject": (2.5, self.reject),
                "review": (1.0, self.review),
                "start a review": (0.0 if reviewing else 1.0, self.review_start),
            })
        if reviewing:
            table["review: decide"] = (4.0, self.review_decide)
            table["review: stop"] = (0.7, self.review_stop)
        if has_scores:
            table["post-processing"] = (2.5, self.postprocess)
        if self.exported and has_rec:
            table["import"] = (0.7, self.import_)
        if has_rec:
            table["import new labels"] = (0.4, self.import_new_labels)
            table["close while detecting"] = (0.2, self.close_while_detecting)
        if len(doc.recordings) > 1:
            table["switch recording"] = (1.5, self.switch_recording)
            table["remove recording"] = (0.2, self.remove_recording)
        return table

    # ------------------------------------------------------------------ opening
    def _open(self) -> None:
        self.window = self.make_window(self.project)
        window = self.window
        window.quiet_errors = True
        window.panels["review"].autoplay.setChecked(False)
        panel = window.panels["detection"]
        panel.refresh_models()
        window.document.model = MODEL_NAME
        window.activateWindow()
        QApplication.processEvents()
        self.start_state = self._project_state()

    def _project_state(self) -> dict:
        return read_project(self.project)

    def open_recording(self) -> str:
        # (now and then a file whose removal can still be undone: undoing that removal
        # brings the recording back and the file's newer events join it)
        path = self.rng.choice(self.recordings)
        self.window.open_files([path])
        return path.name

    def close_and_reopen(self) -> str:
        self._undo_all_and_back("before closing")
        self.close_window(self.window)
        self.window = None
        self._open()
        return ""

    def switch_recording(self) -> str:
        """A click on another recording in the Recordings list."""
        panel = self.window.panels["recordings"]
        items = [panel.topLevelItem(i) for i in range(panel.topLevelItemCount())]
        item = self.rng.choice(items)
        rect = panel.visualItemRect(item)
        panel.scrollToItem(item)
        rect = panel.visualItemRect(item)
        QTest.mouseClick(panel.viewport(), LEFT, NO_MODS, rect.center())
        QApplication.processEvents()
        return item.text(0)

    def close_while_detecting(self) -> str:
        """Ctrl+D, then close the window at once (the run is cancelled; its finished
        recordings' events are kept) and reopen the project."""
        key(self.window, Qt.Key.Key_D, CTRL | SHIFT if self.rng.random() < 0.5 else CTRL)
        QTest.qWait(self.rng.randrange(0, 400))
        self.close_window(self.window)
        self.window = None
        self._open()
        return ""

    def remove_recording(self) -> str:
        doc = self.window.document
        rec = self.rng.choice(doc.recordings)
        doc.remove_recordings([rec.id])  # File > Remove recording (the list's selection)
        return rec.name

    # ------------------------------------------------------------------ detection
    def detect(self) -> str:
        panel = self.window.panels["detection"]
        key(self.window, Qt.Key.Key_D, CTRL)
        wait_until(lambda: not panel.running)
        return f"{len(self.window.document.annotations)} events"

    def detect_in_background(self) -> str:
        key(self.window, Qt.Key.Key_D, CTRL)
        return ""

    def detect_all_in_background(self) -> str:
        key(self.window, Qt.Key.Key_D, CTRL | SHIFT)
        return ""

    def cancel_detection(self) -> str:
        self.window.panels["detection"].cancel_button.click()
        QApplication.processEvents()
        return ""

    def wait_for_detection(self) -> str:
        wait_until(lambda: not self.window.panels["detection"].running)
        return ""

    def postprocess(self) -> str:
        panel = self.window.panels["detection"]
        threshold = round(self.rng.uniform(0.2, 0.9), 2)
        panel.threshold_spin.setValue(threshold)
        if self.rng.random() < 0.4:
            panel.min_duration_spin.setValue(round(self.rng.uniform(0.0, 1.5), 1))
        panel.flush()
        return f"threshold {threshold}"

    # ------------------------------------------------------------------ editing
    def _visible_span(self) -> tuple[float, float]:
        start, stop = self.window.document.view_range
        margin = 0.05 * (stop - start)
        return start + margin, stop - margin

    def _pick_event(self) -> pd.Series | None:
        """An event the user can see: in the view and in a lane shown."""
        doc = self.window.document
        track = self.window.events_track
        start, stop = self._visible_span()
        frame = doc.annotations
        frame = frame[(frame["offset"] > start) & (frame["onset"] < stop)]
        if frame.empty:
            return None
        row = frame.iloc[self.rng.randrange(len(frame))]
        track.show_lane(track.lane_of(row["label"]))
        return row

    def _lane_y(self, label: str) -> float:
        return self.window.events_track.lane_of(label) + 0.5

    def add_by_drag(self) -> str:
        track = self.window.events_track
        start, stop = self._visible_span()
        a = self.rng.uniform(start, stop)
        b = self.rng.uniform(start, stop)
        lane = self.rng.randrange(track.n_lanes)
        track.show_lane(lane)
        drag(track, (a, lane + 0.5), (b, lane + 0.5))
        return f"{a:.2f}-{b:.2f} lane {lane}"

    def add_from_selection(self) -> str:
        start, stop = self._visible_span()
        a, b = self.rng.uniform(start, stop), self.rng.uniform(start, stop)
        drag(self.window.waveform, (a, 0.0), (b, 0.0))
        key(self.window, Qt.Key.Key_Return)
        return f"{a:.2f}-{b:.2f}"

    def move_by_drag(self) -> str | None:
        row = self._pick_event()
        if row is None:
            return "nothing in view"
        middle = (row["onset"] + row["offset"]) / 2
        start, stop = self._visible_span()
        target = self.rng.uniform(start, stop)
        y = self._lane_y(row["label"])
        drag(self.window.events_track, (middle, y), (target, y))
        return f"event {row['id']} by {target - middle:+.2f}"

    def resize_by_drag(self) -> str | None:
        row = self._pick_event()
        if row is None:
            return "nothing in view"
        edge = float(row["onset"] if self.rng.random() < 0.5 else row["offset"])
        start, stop = self._visible_span()
        target = self.rng.uniform(start, stop)
        y = self._lane_y(row["label"])
        drag(self.window.events_track, (edge, y), (target, y))
        return f"event {row['id']} edge {edge:.2f} to {target:.2f}"

    def _select_some(self) -> list[int]:
        """Click one event, ctrl-click a few more (or Ctrl+A now and then)."""
        window = self.window
        if self.rng.random() < 0.15:
            key(window, Qt.Key.Key_A, CTRL)
            return sorted(window.document.selection)
        for i in range(self.rng.choice((1, 1, 1, 2, 3))):
            row = self._pick_event()
            if row is None:
                break
            middle = (row["onset"] + row["offset"]) / 2
            click(window.events_track, (middle, self._lane_y(row["label"])),
                  modifiers=CTRL if i else NO_MODS)
        return sorted(window.document.selection)

    def delete(self) -> str:
        ids = self._select_some()
        key(self.window, Qt.Key.Key_Delete)
        return f"{ids}"

    def accept(self) -> str:
        ids = self._select_some()
        key(self.window, Qt.Key.Key_A)
        return f"{ids}"

    def reject(self) -> str:
        ids = self._select_some()
        key(self.window, Qt.Key.Key_R)
        return f"{ids}"

    def relabel_digit(self) -> str:
        ids = self._select_some()
        digit = self.rng.randrange(1, 10)
        key(self.window, getattr(Qt.Key, f"Key_{digit}"))
        return f"{ids} key {digit}"

    def relabel_double_click(self) -> str | None:
        row = self._pick_event()
        if row is None:
            return "nothing in view"
        label = self.rng.choice(LABELS)
        self.window.label_picker = lambda _w, _d, _ids: label
        middle = (row["onset"] + row["offset"]) / 2
        click(self.window.events_track, (middle, self._lane_y(row["label"])), double=True)
        return f"event {row['id']} to {label}"

    def relabel_in_table(self) -> str:
        from app.panels.events_table import KEYS

        panel = self.window.panels["events_table"]
        model = panel.model
        if model.rowCount() == 0:
            return "empty table"
        row = self.rng.randrange(model.rowCount())
        label = self.rng.choice(LABELS)
        index = model.index(row, KEYS.index("label"))
        model.setData(index, label)
        QTest.qWait(1)  # the edit is applied once the editor has closed
        QApplication.processEvents()
        return f"row {row} to {label}"

    def undo(self) -> str:
        n = self.rng.choice((1, 1, 2, 3))
        for _ in range(n):
            key(self.window, Qt.Key.Key_Z, CTRL)
        return str(n)

    def redo(self) -> str:
        n = self.rng.choice((1, 1, 2))
        for _ in range(n):
            key(self.window, Qt.Key.Key_Z, CTRL | SHIFT)
        return str(n)

    def zoom_or_scroll(self) -> str:
        choice = self.rng.choice(("in", "out", "left", "right", "all"))
        keys = {"in": (Qt.Key.Key_Equal, CTRL), "out": (Qt.Key.Key_Minus, CTRL),
                "left": (Qt.Key.Key_Left, NO_MODS), "right": (Qt.Key.Key_Right, NO_MODS),
                "all": (Qt.Key.Key_0, CTRL)}
        key(self.window, *keys[choice])
        return choice

    def play_or_pause(self) -> str:
        key(self.window, Qt.Key.Key_Space)
        return self.window.player.state

    def rename_label(self) -> str:
        """The vocabulary dialog's rename (renaming onto another label merges them)."""
        doc = self.window.document
        names = [e.name for e in doc.vocabulary()]
        if not names:
            return "empty vocabulary"
        old = self.rng.choice(names)
        new = self.rng.choice([*LABELS, old + " (2)"])
        if new != old:
            doc.rename_label(old, new)
        return f"{old} to {new}"

    # ------------------------------------------------------------------ review
    def review_start(self) -> str:
        return "started" if self.window.panels["review"].start() else "nothing to review"

    def review_decide(self) -> str:
        panel = self.window.panels["review"]
        name, qt_key = self.rng.choice((("accept", Qt.Key.Key_A), ("reject", Qt.Key.Key_R),
                                        ("skip", Qt.Key.Key_S), ("back", Qt.Key.Key_B)))
        current = panel.current_id
        key(self.window, qt_key)
        return f"{name} {current}"

    def review_stop(self) -> str:
        self.window.panels["review"].stop()
        return ""

    def review(self) -> str:
        panel = self.window.panels["review"]
        if not panel.start():
            return "nothing to review"
        decisions = []
        for _ in range(self.rng.randrange(1, 6)):
            if not panel.active:
                break
            button = self.rng.choice((panel.accept_button, panel.reject_button,
                                      panel.skip_button, panel.back_button))
            if button.isEnabled():
                QTest.mouseClick(button, LEFT)
                decisions.append(button.text().split()[0])
        panel.stop()
        return " ".join(decisions)

    # ------------------------------------------------------------ import/export
    def export(self) -> str:
        from app.dialogs.io_dialogs import ExportDialog

        fmt = self.rng.choice(("dcase", "audacity", "raven", "events_table"))
        dialog = ExportDialog(self.window.document, self.window)
        try:
            dialog.set_format(fmt)
            per = dialog.per_recording.isChecked()
            suffix = "" if per else {"audacity": ".txt", "raven": ".txt"}.get(fmt, ".tsv")
            dest = self.exports / f"{fmt}-{self.stats.actions}{suffix}"
            dialog.set_destination(dest)
            written = dialog.export()
        finally:
            dialog.deleteLater()
        self.exported.extend(p for p in written if p.is_file())
        return f"{fmt}: {len(written)} file(s)"

    def import_(self) -> str:
        from app.dialogs.io_dialogs import ImportDialog

        path = self.rng.choice(self.exported)
        dialog = ImportDialog(self.window.document, self.window, paths=[path])
        try:
            dialog.add_labels.setChecked(self.rng.random() < 0.5)
            n = dialog.import_files()
        finally:
            dialog.deleteLater()
        return f"{path.name}: {n} event(s)"

    def import_new_labels(self) -> str:
        """An Audacity label file for the current recording, labels new and old."""
        from app.dialogs.io_dialogs import ImportDialog

        doc = self.window.document
        path = self.exports / f"labels-{self.stats.actions}.txt"
        lines = []
        for _ in range(self.rng.randrange(1, 4)):
            a = self.rng.uniform(0, doc.duration - 0.5)
            b = min(doc.duration, a + self.rng.uniform(0.2, 3.0))
            label = self.rng.choice([*LABELS, "Cuckoo", "Woodpecker", "Frog"])
            lines.append(f"{a:.6f}\t{b:.6f}\t{label}")
        path.write_text("\n".join(lines) + "\n")
        dialog = ImportDialog(doc, self.window, paths=[path])
        try:
            dialog.target_combo.setCurrentIndex(
                dialog.target_combo.findData(doc.recording.id))
            dialog.add_labels.setChecked(self.rng.random() < 0.7)
            n = dialog.import_files()
        finally:
            dialog.deleteLater()
        return f"{n} event(s): " + ", ".join(line.split("\t")[2] for line in lines)

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        window = self.window
        QApplication.processEvents()
        if self.slot_errors:
            self.fail("an exception escaped a Qt slot:\n" + self.slot_errors[0])
        error = window.last_error
        if error is not None:
            if UNEXPECTED in error:
                self.fail(f"the window showed: {error}")
            self.log.append(f"  (message: {error.splitlines()[0]})")
            window.last_error = None
        state = read_project(self.project)
        if state["integrity"] != ["ok"]:
            self.fail(f"integrity_check: {state['integrity']}")
        if state["foreign"]:
            self.fail(f"foreign_key_check: {state['foreign']}")
        doc = window.document
        if doc.store is None:
            self.fail("the window has no project open")
        if doc.store.integrity_check() != "ok":
            self.fail("integrity_check on the window's own connection failed")
        rec = doc.recording
        stored = state["events"]
        if rec is None:
            if len(doc.annotations):
                self.fail("events shown with no recording open")
            return
        on_disk = stored[stored["recording_id"] == rec.id][SHOWN_COLUMNS]
        on_disk = on_disk.sort_values("id").reset_index(drop=True)
        shown = doc.annotations[SHOWN_COLUMNS].sort_values("id").reset_index(drop=True)
        diff = _events_equal(on_disk, shown)
        if diff:
            self.fail(f"the document differs from the project file: {diff}")
        self._check_table(on_disk)
        self._check_track(on_disk)
        if set(doc.selection) - set(shown["id"]):
            self.fail(f"selected ids {sorted(doc.selection)} are not all shown")
        review = window.panels["review"]
        if review.current_id is not None and review.current_id not in set(shown["id"]):
            self.fail(f"the review shows event {review.current_id}, which is gone")
        history = doc.history
        if (window.undo_action.isEnabled(), window.redo_action.isEnabled()) != (
                history.can_undo, history.can_redo):
            self.fail("the Undo/Redo menu entries disagree with the history")
        if [r.id for r in doc.recordings] != [r[0] for r in state["recordings"]]:
            self.fail("the recordings list differs from the project file")

    def _check_table(self, on_disk: pd.DataFrame) -> None:
        from app.panels.events_table import KEYS

        model = self.window.panels["events_table"].model
        ids = sorted(model.event_id(r) for r in range(model.rowCount()))
        if ids != sorted(on_disk["id"]):
            self.fail(f"the events table shows ids {ids}, the project {sorted(on_disk['id'])}")
        by_id = on_disk.set_index("id")
        label_col, status_col = KEYS.index("label"), KEYS.index("status")
        onset_col = KEYS.index("onset")
        from app.views.base import format_time

        for r in range(model.rowCount()):
            event_id = model.event_id(r)
            want = by_id.loc[event_id]
            cells = (model.data(model.index(r, label_col)),
                     model.data(model.index(r, status_col)),
                     model.data(model.index(r, onset_col)))
            expect = (str(want["label"]), str(want["status"]),
                      format_time(float(want["onset"]), 0.01))
            if cells != expect:
                self.fail(f"table row of event {event_id} shows {cells}, the project {expect}")

    def _check_track(self, on_disk: pd.DataFrame) -> None:
        data = self.window.events_track.paint_data()
        drawn = pd.DataFrame({"id": data["id"], "onset": data["onset"],
                              "offset": data["offset"], "label": data["label"],
                              "status": data["status"]})
        drawn = drawn.sort_values("id").reset_index(drop=True)
        want = on_disk[["id", "onset", "offset", "label", "status"]]
        diff = _events_equal(want.reset_index(drop=True), drawn)
        if diff:
            self.fail(f"the events track draws something else: {diff}")
        track = self.window.events_track
        missing = set(want["label"]) - set(track.lanes)
        if missing:
            self.fail(f"labels without a lane on the events track: {missing}")

    def _undo_all_and_back(self, when: str) -> None:
        """Ctrl+Z to the start of the history: the project as it was; Ctrl+Shift+Z to the
        end: as it was before the undo."""
        window = self.window
        history = window.document.history
        wait_until(lambda: not window.panels["detection"].running)
        window.panels["review"].stop()
        window.player.stop()
        QApplication.processEvents()
        self.check()
        before = read_project(self.project)
        steps = 0
        while history.can_undo:
            key(window, Qt.Key.Key_Z, CTRL)
            steps += 1
            if steps > history.limit + 5:
                self.fail("undo does not reach the start")
        self.log.append(f"undo all ({steps} steps, {when})")
        self.check()
        self._compare(self.start_state, read_project(self.project),
                      f"undo to the start ({when})", new_recordings_ok=True)
        pending_redo = len(history._redo) - steps  # what was undone before the check
        for _ in range(steps):
            key(window, Qt.Key.Key_Z, CTRL | SHIFT)
        self.log.append(f"redo {steps} steps")
        self.check()
        self._compare(before, read_project(self.project), f"redo after undo ({when})")
        if len(history._redo) != pending_redo or len(history._undo) != steps:
            self.fail(f"after undoing and redoing {steps} steps the history holds "
                      f"{len(history._undo)} undo and {len(history._redo)} redo steps, "
                      f"not {steps} and {pending_redo}")
        self.stats.undo_checks += 1

    def _compare(self, want: dict, got: dict, what: str, new_recordings_ok: bool = False
                 ) -> None:
        diff = _events_equal(want["events"][EVENT_COLUMNS], got["events"][EVENT_COLUMNS])
        if diff:
            self.fail(f"{what}: events differ: {diff}")
        if want["labels"] != got["labels"]:
            self.fail(f"{what}: vocabulary differs: {want['labels']} != {got['labels']}")
        recs_want, recs_got = set(want["recordings"]), set(got["recordings"])
        if recs_want != recs_got and not (new_recordings_ok and recs_want <= recs_got):
            self.fail(f"{what}: recordings differ: {sorted(recs_want ^ recs_got)}")
