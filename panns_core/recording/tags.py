"""Live tags: labels switched on and off while recording, timed by the sample counter.

:class:`TagTracker` turns start/stop requests (already timestamped in frames by the
recorder) into human events. :class:`HotkeyTagger` implements the keyboard gesture of the
annotator: press and hold a key for the event's duration, or press once to start and
once more to stop. Only the gesture's hold/tap decision uses the wall clock; the event
times always come from the recorder's sample counter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class TagTracker:
    """Open and closed tags in frames; not thread-safe (the recorder's writer owns it)."""

    def __init__(self) -> None:
        self.open: dict[str, int] = {}
        self.closed: list[tuple[str, int, int]] = []

    def start(self, label: str, frame: int) -> None:
        self.open.setdefault(label, frame)

    def stop(self, label: str, frame: int) -> None:
        onset = self.open.pop(label, None)
        if onset is not None and frame > onset:  # zero-length taps carry no event
            self.closed.append((label, onset, frame))

    def toggle(self, label: str, frame: int) -> None:
        if label in self.open:
            self.stop(label, frame)
        else:
            self.start(label, frame)

    def close_all(self, frame: int) -> None:
        for label in list(self.open):
            self.stop(label, frame)

    def events(self, sample_rate: int, recording: str = ""):
        """The closed tags as human events (panns_core.events schema), by onset."""
        from ..events import ADDED, HUMAN, empty_events, make_events

        if not self.closed:
            return empty_events()
        rows = [
            {"label": label, "onset": a / sample_rate, "offset": b / sample_rate}
            for label, a, b in sorted(self.closed, key=lambda t: (t[1], t[2], t[0]))
        ]
        return make_events(rows, recording=recording, source=HUMAN, status=ADDED)


class Taggable(Protocol):
    def tag_start(self, label: str) -> None: ...
    def tag_stop(self, label: str) -> None: ...


class HotkeyTagger:
    """Key press/release -> tag start/stop, holding or tapping.

    A press starts the label's tag, or stops it when it is already running (the tap
    gesture's second press). A release stops the tag only when the key was held for at
    least ``hold_seconds`` (the hold gesture); a quick tap leaves it running.
    """

    def __init__(
        self,
        target: Taggable,
        hold_seconds: float = 0.4,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.target = target
        self.hold_seconds = hold_seconds
        self._clock = clock
        self._running: set[str] = set()
        self._pressed: dict[str, float] = {}

    @property
    def running(self) -> frozenset[str]:
        return frozenset(self._running)

    def press(self, label: str) -> None:
        if label in self._pressed:  # auto-repeat
            return
        if label in self._running:
            self._running.discard(label)
            self.target.tag_stop(label)
            self._pressed[label] = float("-inf")  # this press ended a tag
            return
        self._running.add(label)
        self._pressed[label] = self._clock()
        self.target.tag_start(label)

    def release(self, label: str) -> None:
        pressed = self._pressed.pop(label, None)
        if pressed is None or pressed == float("-inf"):
            return
        if self._clock() - pressed >= self.hold_seconds and label in self._running:
            self._running.discard(label)
            self.target.tag_stop(label)
