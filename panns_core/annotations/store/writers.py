"""What other writers changed: footprints of commits made by other connections.

SQLite tells a connection *that* another one committed (``PRAGMA data_version``);
:class:`OutsideWatch` tells *what* it touched, by comparing small fingerprints taken
after this connection's own writes with the database now:

* per recording, its events' (count, sum of ids, total of ``modified``): every event
  edit sets ``modified`` (to now, or back to the old value on undo), adds or removes
  rows;
* the label vocabulary (every row) and the recordings list (id and path).

A :class:`Footprint` is what a commit touched: events of some recordings, the
vocabulary, the recordings list. An undo entry whose own footprint is touched by a
later outside commit must not be applied (it would revert that work); the others still
undo exactly. Each outside change gets a sequence number so an entry made after it is
not held against it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Footprint:
    recordings: frozenset[int] = frozenset()  # whose events (or row) changed
    vocabulary: bool = False
    listing: bool = False  # recordings added, removed or moved
    everything: bool = False  # unknown: touches every footprint

    def __or__(self, other: Footprint) -> Footprint:
        return Footprint(self.recordings | other.recordings,
                         self.vocabulary or other.vocabulary, self.listing or other.listing,
                         self.everything or other.everything)

    def touches(self, other: Footprint) -> bool:
        if self.everything or other.everything:
            return bool(self) and bool(other)
        return bool(self.recordings & other.recordings) or (
            self.vocabulary and other.vocabulary) or (self.listing and other.listing)

    def __bool__(self) -> bool:
        return bool(self.recordings) or self.vocabulary or self.listing or self.everything


EVERYTHING = Footprint(everything=True)


class OutsideWatch:
    """Fingerprints of one connection's last known state (see the module docstring).
    Not thread-safe: the store calls it under its lock."""

    def __init__(self, con: sqlite3.Connection) -> None:
        self.con = con
        self.version = self._version()
        self.events = self._event_prints()
        self.vocabulary = self._vocabulary()
        self.listing = self._listing()
        self.listing_sum = self._listing_sum()
        self.seq = 0  # outside changes seen so far
        self.pending: list[tuple[int, Footprint]] = []  # not yet taken by the window

    def _version(self) -> int:
        return self.con.execute("PRAGMA data_version").fetchone()[0]

    def _event_prints(self, recordings: Iterable[int] | None = None) -> dict[int, tuple]:
        sql = "SELECT recording_id, count(*), sum(id), total(modified) FROM events"
        if recordings is None:
            return {row[0]: row[1:] for row in self.con.execute(sql + " GROUP BY recording_id")}
        prints = {}
        for rec in sorted(set(recordings)):  # one index range each
            row = self.con.execute(sql + " WHERE recording_id = ?", (int(rec),)).fetchone()
            if row[1]:
                prints[int(rec)] = row[1:]
        return prints

    def _vocabulary(self) -> list[tuple]:
        return self.con.execute(
            "SELECT id, name, mid, colour, hotkey, position FROM labels ORDER BY id").fetchall()

    def _listing(self) -> dict[int, str]:
        return dict(self.con.execute("SELECT id, path FROM recordings"))

    def _listing_sum(self) -> tuple:
        """A cheap summary of the list: adding files one by one stays linear."""
        return self.con.execute(
            "SELECT count(*), total(id), total(length(path)) FROM recordings").fetchone()

    def look(self) -> bool:
        """Record what other connections committed since the last look (as a pending
        footprint); True when they committed anything."""
        version = self._version()
        if version == self.version:
            return False
        self.version = version
        events = self._event_prints()
        vocabulary = self._vocabulary()
        listing = self._listing()
        changed = {r for r in events.keys() | self.events.keys()
                   if events.get(r) != self.events.get(r)}
        moved = {r for r in listing.keys() | self.listing.keys()
                 if listing.get(r) != self.listing.get(r)}
        footprint = Footprint(frozenset(changed | moved), vocabulary != self.vocabulary,
                              bool(moved))
        self.events, self.vocabulary, self.listing = events, vocabulary, listing
        self.listing_sum = self._listing_sum()
        self.seq += 1
        self.pending.append((self.seq, footprint))
        if len(self.pending) > 64:  # nobody takes them (a command line): keep one union
            union = Footprint()
            for _seq, each in self.pending:
                union = union | each
            self.pending = [(self.pending[0][0], union)]
        return True

    def own(self, recordings: Iterable[int] = ()) -> Footprint:
        """After this connection's own write (inside its transaction, after
        :meth:`look`): take the fingerprints again; returns what the write touched."""
        recordings = set(recordings)
        fresh = self._event_prints(recordings)
        for rec in recordings:
            if rec in fresh:
                self.events[rec] = fresh[rec]
            else:
                self.events.pop(rec, None)
        vocabulary = self._vocabulary()
        summary = self._listing_sum()
        # a path changed to one of the same length is missed here: the next look then
        # counts it as another program's change, which only drops more undo steps
        listing = self.listing if summary == self.listing_sum else self._listing()
        self.listing_sum = summary
        moved = {r for r in listing.keys() | self.listing.keys()
                 if listing.get(r) != self.listing.get(r)}
        for rec in moved - listing.keys():
            self.events.pop(rec, None)  # removed with its events (cascade)
        footprint = Footprint(frozenset(recordings | moved), vocabulary != self.vocabulary,
                              bool(moved))
        self.vocabulary, self.listing = vocabulary, listing
        return footprint

    def conflict(self, guard: Footprint, since: int) -> bool:
        """Whether an outside change after ``since`` not yet taken touches ``guard``."""
        return any(seq > since and footprint.touches(guard)
                   for seq, footprint in self.pending)

    def take(self) -> list[tuple[int, Footprint]]:
        taken, self.pending = self.pending, []
        return taken
