"""Salvage: copy whatever rows of a damaged (or foreign-made) project are still
readable into a new, clean project.

The damaged file is only read (read-only connection, hardened: none of its triggers or
views run). Each table of the project schema is read in rowid order; where a damaged
page stops the scan, the reader seeks past it (rowid probes at growing distances) and
goes on, so one bad page costs the rows on that page only. Rows are written into a new
project (the current schema, built by :class:`ProjectStore`) with their ids, so events
keep their ids; a row that breaks the schema's rules (e.g. an offset before its onset)
is left out and counted. Events whose recording row was lost keep a placeholder
recording (``lost recording N``) so nothing readable is dropped. The new file is
written under a temporary name and moved into place when complete.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ...errors import Cancelled, ProjectFileError, StoreError
from . import checks
from .schema import SCHEMA_VERSION

# table -> columns, in the order rows are copied (recordings before what refers to them)
TABLES: dict[str, tuple[str, ...]] = {
    "recordings": ("id", "path", "size", "sha256", "duration", "sample_rate", "channels",
                   "added", "note"),
    "labels": ("id", "name", "mid", "colour", "hotkey", "position"),
    "events": ("id", "recording_id", "onset", "offset", "label", "confidence", "low_freq",
               "high_freq", "source", "status", "note", "created", "modified"),
    "models": ("id", "path", "sha256", "architecture", "labels", "metadata", "added"),
    "training_runs": ("id", "started", "finished", "status", "base_model", "output_model",
                      "params", "metrics", "note"),
    "score_cache": ("recording_id", "model_id", "path", "audio_hash", "created"),
}


@dataclass
class SalvageReport:
    """What :func:`salvage` copied: rows per table, rows it could not read (damaged
    stretches) or could not keep (breaking the schema's rules), placeholders made."""

    source: Path
    dest: Path
    copied: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)  # damaged stretches met
    rejected: dict[str, int] = field(default_factory=dict)
    placeholders: int = 0

    def describe(self) -> str:
        parts = [f"{n} {table.replace('_', ' ')}" for table, n in self.copied.items() if n]
        text = f"Salvaged {', '.join(parts) or 'nothing'} from {self.source} into {self.dest}"
        lost = [f"{n} damaged stretch(es) in {t}" for t, n in self.unreadable.items() if n]
        bad = [f"{n} invalid row(s) of {t}" for t, n in self.rejected.items() if n]
        if lost or bad:
            text += "; left out: " + ", ".join(lost + bad)
        if self.placeholders:
            text += (f"; {self.placeholders} recording(s) whose row was lost are kept as "
                     "'lost recording N' placeholders")
        return text + "."


def salvage(source: str | os.PathLike, dest: str | os.PathLike, *,
            progress: Callable[[float, str], None] | None = None,
            cancel=None) -> SalvageReport:
    """Copy what is readable of the project ``source`` into the new project ``dest``."""
    from .project import ProjectStore

    source, dest = Path(source).expanduser(), Path(dest).expanduser()
    if not source.is_file():
        raise StoreError(f"No file at {source}.")
    if dest.exists():
        raise StoreError(f"{dest} exists already; salvage into a new file name.")
    with open(source, "rb") as handle:
        head = handle.read(100)
    if not head.startswith(checks.SQLITE_MAGIC):
        raise ProjectFileError(
            f"Nothing can be salvaged from {source}: it is not an SQLite database (its "
            "header is gone). Restore it from a backup.", str(source))
    part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    padded = _padded_copy(source, head, dest.with_name(f".{dest.name}.{os.getpid()}.cut"))
    uri = f"file:{quote(str((padded or source).resolve()))}?mode=ro"
    con = sqlite3.connect(uri, uri=True, timeout=10.0)
    report = SalvageReport(source, dest)
    try:
        checks.harden(con)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError:
            version = 0
        if version > SCHEMA_VERSION:
            raise ProjectFileError(
                f"{source} was written by a newer version of this program (schema "
                f"{version}); update the program to open it rather than salvaging it.",
                str(source))
        present = _tables(con)
        out = ProjectStore(part)
        try:
            with out.transaction() as target:
                target.execute("PRAGMA defer_foreign_keys = ON")
                recording_ids: set[int] = set()
                scanned: dict[str, list[tuple]] | None = None
                for n, (table, columns) in enumerate(TABLES.items()):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("Salvage cancelled; no new project was written.")
                    if progress is not None:
                        progress(n / len(TABLES), f"reading {table}")
                    have = _columns(con, table) if table in present else []
                    wanted = [c for c in columns if c in have]
                    if not wanted:
                        report.unreadable[table] = int(table in present)
                        continue
                    rows, gaps = _read_table(con, table, wanted, cancel)
                    if gaps and wanted == list(columns):
                        # the tree is cut: look for the table's rows page by page
                        if scanned is None:
                            scanned = scan_pages(padded or source,
                                                 source.stat().st_size)
                        rows = _merge(table, rows, scanned.get(table, []))
                    report.unreadable[table] = gaps
                    if table == "events" and "recording_id" in wanted:
                        at = wanted.index("recording_id")
                        report.placeholders = _placeholders(
                            target, {r[at] for r in rows} - recording_ids, rows, wanted)
                    elif table == "score_cache" and "recording_id" in wanted:
                        at = wanted.index("recording_id")
                        rows = [r for r in rows if r[at] in recording_ids]
                    copied = _insert(target, table, wanted, rows)
                    report.copied[table] = copied
                    report.rejected[table] = len(rows) - copied
                    if table == "recordings":
                        recording_ids = {r[0] for r in target.execute(
                            "SELECT id FROM recordings")}
                problems = target.execute("PRAGMA foreign_key_check").fetchall()
                if problems:  # cannot happen: events of lost recordings got placeholders
                    raise StoreError(f"Salvage made rows without their parents: {problems[:3]}")
        finally:
            out.close()
        for leftover in (Path(f"{part}-wal"), Path(f"{part}-shm")):
            leftover.unlink(missing_ok=True)
        if dest.exists():
            raise StoreError(f"{dest} appeared while salvaging; the salvage is in {part}.")
        os.replace(part, dest)
    finally:
        con.close()
        for leftover in (part, Path(f"{part}-wal"), Path(f"{part}-shm")):
            leftover.unlink(missing_ok=True)
        if padded is not None:
            for leftover in (padded, Path(f"{padded}-wal"), Path(f"{padded}-shm")):
                leftover.unlink(missing_ok=True)
    if progress is not None:
        progress(1.0, "done")
    return report


def _padded_copy(source: Path, head: bytes, copy: Path) -> Path | None:
    """A file cut short is refused whole by SQLite: read a copy padded with zero bytes
    to the length its header gives (the pages that were cut off, the one cut in two
    included, read as damaged; the rest as they are). None when the file is not cut
    short."""
    page_size = int.from_bytes(head[16:18], "big") if len(head) >= 18 else 0
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big") if len(head) >= 32 else 0
    size = source.stat().st_size
    if not page_size or size >= pages * page_size:
        return None
    shutil.copyfile(source, copy)
    with open(copy, "r+b") as handle:
        handle.truncate(size // page_size * page_size)  # a page cut in two is not used
        handle.truncate(pages * page_size)
    wal = Path(f"{source}-wal")
    if wal.is_file():
        shutil.copyfile(wal, f"{copy}-wal")
    return copy


# per table: what each column of a stored record may be ("k": the INTEGER PRIMARY KEY,
# stored as NULL, the rowid; "i" integer; "r" number; "t" text; "?" also NULL)
_RECORDS: dict[str, tuple[str, ...]] = {
    "recordings": ("k", "t", "i?", "t?", "r?", "i?", "i?", "r", "t"),
    "labels": ("k", "t", "t?", "t?", "t?", "i"),
    "events": ("k", "i", "r", "r", "t", "r?", "r?", "r?", "t", "t", "t", "r", "r"),
    "models": ("t", "t?", "t?", "t?", "t?", "t?", "r"),
    "training_runs": ("k", "r", "r?", "t", "t?", "t?", "t?", "t?", "t"),
    "score_cache": ("i", "t", "t", "t?", "r"),
}
_KEYS = {"models": (0,), "score_cache": (0, 1)}  # else the id (first column)


def _merge(table: str, rows: list[tuple], found: list[tuple]) -> list[tuple]:
    """``rows`` read through the table's tree, plus the rows the page scan found that
    the tree did not give (same key)."""
    key = _KEYS.get(table, (0,))
    have = {tuple(row[i] for i in key) for row in rows}
    extra = [row for row in found if tuple(row[i] for i in key) not in have]
    return rows + extra


def scan_pages(path: Path, size: int | None = None) -> dict[str, list[tuple]]:
    """Rows of the project tables found by reading every table-leaf page of the file
    (what a cut or damaged tree no longer reaches); pages on the free list are skipped,
    so deleted rows do not come back, and so are pages the first ``size`` bytes do not
    hold whole (a file cut short). A record is given to the table whose column layout
    it matches."""
    data = path.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    usable = page_size - data[20]
    pages = len(data) // page_size
    free = _free_pages(data, page_size, pages)
    whole = pages if size is None else min(pages, size // page_size)
    found: dict[str, list[tuple]] = {}
    for number in range(1, whole + 1):
        if number in free:
            continue
        page = data[(number - 1) * page_size: number * page_size]
        at = 100 if number == 1 else 0
        if page[at] != 0x0D:  # not a table leaf
            continue
        cells = int.from_bytes(page[at + 3: at + 5], "big")
        for c in range(cells):
            try:
                pointer = int.from_bytes(page[at + 8 + 2 * c: at + 10 + 2 * c], "big")
                values, rowid = _cell(data, page, pointer, page_size, usable, pages)
            except (IndexError, ValueError, UnicodeDecodeError):
                continue
            table = _which_table(values)
            if table is not None:
                if _RECORDS[table][0] == "k":
                    values = (rowid, *values[1:])
                found.setdefault(table, []).append(values)
    return found


def _free_pages(data: bytes, page_size: int, pages: int) -> set[int]:
    free: set[int] = set()
    trunk = int.from_bytes(data[32:36], "big")
    while 0 < trunk <= pages and trunk not in free:
        free.add(trunk)
        page = data[(trunk - 1) * page_size: trunk * page_size]
        count = min(int.from_bytes(page[4:8], "big"), page_size // 4 - 2)
        free.update(int.from_bytes(page[8 + 4 * i: 12 + 4 * i], "big") for i in range(count))
        trunk = int.from_bytes(page[0:4], "big")
    return free


def _varint(buf: bytes, at: int) -> tuple[int, int]:
    value = 0
    for i in range(9):
        byte = buf[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise ValueError("bad varint")  # pragma: no cover


def _cell(data: bytes, page: bytes, at: int, page_size: int, usable: int, pages: int
          ) -> tuple[tuple, int]:
    size, at = _varint(page, at)
    rowid, at = _varint(page, at)
    rowid = rowid - (1 << 64) if rowid >= 1 << 63 else rowid
    most = usable - 35
    if size <= most:
        payload = page[at: at + size]
    else:  # the rest is on a chain of overflow pages
        least = (usable - 12) * 32 // 255 - 23
        local = least + (size - least) % (usable - 4)
        local = local if local <= most else least
        payload = bytearray(page[at: at + local])
        following = int.from_bytes(page[at + local: at + local + 4], "big")
        seen = set()
        while len(payload) < size:
            if not 0 < following <= pages or following in seen:
                raise ValueError("overflow chain cut")
            seen.add(following)
            over = data[(following - 1) * page_size: following * page_size]
            payload += over[4: 4 + min(usable - 4, size - len(payload))]
            following = int.from_bytes(over[0:4], "big")
        payload = bytes(payload)
    if len(payload) != size:
        raise ValueError("cell cut")
    return _record(payload), rowid


def _record(payload: bytes) -> tuple:
    header, at = _varint(payload, 0)
    kinds = []
    while at < header:
        kind, at = _varint(payload, at)
        kinds.append(kind)
    values = []
    body = header
    for kind in kinds:
        if kind == 0:
            values.append(None)
            continue
        if 1 <= kind <= 6:
            width = (1, 2, 3, 4, 6, 8)[kind - 1]
            values.append(int.from_bytes(payload[body: body + width], "big", signed=True))
            body += width
        elif kind == 7:
            values.append(struct.unpack(">d", payload[body: body + 8])[0])
            body += 8
        elif kind in (8, 9):
            values.append(kind - 8)
        elif kind >= 12:
            width = (kind - 12) // 2
            chunk = payload[body: body + width]
            text = chunk.decode("utf-8") if kind % 2 else None
            if text is not None and "\x00" in text:
                raise ValueError("text with NUL bytes: a damaged record")
            values.append(bytes(chunk) if text is None else text)
            body += width
        else:
            raise ValueError("reserved serial type")
    if body != len(payload):
        raise ValueError("record length")
    return tuple(values)


def _which_table(values: tuple) -> str | None:
    for table, layout in _RECORDS.items():
        if len(layout) == len(values) and all(
                _fits(kind, value) for kind, value in zip(layout, values)):
            return table
    return None


def _fits(kind: str, value) -> bool:
    if value is None:
        return kind == "k" or kind.endswith("?")
    base = kind[0]
    if base in "ik":
        return base == "i" and isinstance(value, int)
    if base == "r":
        return isinstance(value, (int, float))
    return isinstance(value, str)


def _tables(con: sqlite3.Connection) -> set[str]:
    try:
        return {row[0] for row in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError:
        return set()


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    try:
        return [row[1] for row in con.execute(f'PRAGMA table_info("{table}")')]
    except sqlite3.DatabaseError:
        return []


def _read_table(con: sqlite3.Connection, table: str, columns: list[str], cancel
                ) -> tuple[list[tuple], int]:
    """Every readable row of ``table`` (rowid order) and how many damaged places were
    skipped."""
    rows: list[tuple] = []
    gaps = 0
    pos: int | None = None  # rows up to this rowid are read
    stuck_at: int | None = None
    cols = ", ".join(f'"{c}"' for c in columns)
    while True:
        read_any = False
        try:
            for rowid, *values in _scan(con, table, cols, pos):
                rows.append(tuple(values))
                pos, read_any = rowid, True
            return rows, gaps
        except sqlite3.DatabaseError:
            pass
        if cancel is not None and cancel.is_set():
            raise Cancelled("Salvage cancelled; no new project was written.")
        after = _next_readable(con, table, pos)
        if after is None:
            return rows, gaps + 1
        if after == stuck_at and not read_any:
            pos = after  # the row itself cannot be read (its seek works): skip it
        else:
            gaps += 1
            stuck_at, pos = after, after - 1


def _scan(con: sqlite3.Connection, table: str, cols: str, after: int | None) -> Iterator:
    if after is None:
        yield from con.execute(f'SELECT rowid, {cols} FROM "{table}" ORDER BY rowid')
    else:
        yield from con.execute(
            f'SELECT rowid, {cols} FROM "{table}" WHERE rowid > ? ORDER BY rowid', (after,))


_LOWEST, _HIGHEST = -(2 ** 63), 2 ** 63 - 1


def _next_readable(con: sqlite3.Connection, table: str, pos: int | None) -> int | None:
    """The first rowid after ``pos`` that a seek reaches, probing at growing distances
    and then bisecting back towards ``pos``; None when nothing further can be reached."""

    def probe(after: int) -> int | None:
        row = con.execute(f'SELECT rowid FROM "{table}" WHERE rowid > ? ORDER BY rowid '
                          "LIMIT 1", (after,)).fetchone()
        return None if row is None else row[0]

    base = _LOWEST if pos is None else pos
    step = 0
    while True:
        try:
            found = probe(base + step)
            break
        except sqlite3.DatabaseError:
            step = 1 if step == 0 else step * 2
            if base + step >= _HIGHEST:
                return None
    low, high = base + step // 2, base + step  # probe(low) failed (or low == base)
    while step > 1 and high - low > 1:
        middle = (low + high) // 2
        try:
            found, high = probe(middle), middle
        except sqlite3.DatabaseError:
            low = middle
    return found


def _placeholders(target: sqlite3.Connection, missing: set, rows: list[tuple],
                  columns: list[str]) -> int:
    """A 'lost recording N' row for each recording id events refer to but that is gone."""
    ids = sorted(i for i in missing if isinstance(i, int))
    if not ids:
        return 0
    at_rec, at_off = columns.index("recording_id"), columns.index("offset") \
        if "offset" in columns else None
    ends: dict[int, float] = {}
    for row in rows:
        if row[at_rec] in missing and at_off is not None and isinstance(row[at_off], float):
            ends[row[at_rec]] = max(ends.get(row[at_rec], 0.0), row[at_off])
    target.executemany(
        "INSERT INTO recordings (id, path, duration, added, note) VALUES (?, ?, ?, ?, ?)",
        [(i, f"lost recording {i}", ends.get(i), time.time(),
          "salvaged: this recording's row was unreadable; its file path is unknown")
         for i in ids])
    return len(ids)


def _insert(target: sqlite3.Connection, table: str, columns: list[str], rows: list[tuple]
            ) -> int:
    if not rows:
        return 0
    before = target.total_changes
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" * len(columns))
    target.executemany(f'INSERT OR IGNORE INTO "{table}" ({cols}) VALUES ({marks})', rows)
    return target.total_changes - before
