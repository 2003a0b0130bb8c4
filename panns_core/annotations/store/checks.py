"""Checks made before a project file is opened for writing, and the hardening every
connection to a project gets.

:func:`check_file` opens an existing file read-only (the file's bytes are never
changed by it) and refuses, with a :class:`~panns_core.errors.ProjectFileError`, a file
that is not SQLite, is damaged (``PRAGMA integrity_check``), was written by a newer
version, is another program's database, or holds schema objects (triggers, views,
tables, indexes) that this program's migrations did not make.

:func:`harden` makes sure nothing a file brings along runs: ``PRAGMA trusted_schema =
OFF`` (no function with side effects in a view, trigger, CHECK, DEFAULT or index
expression), SQLite's defensive mode where Python exposes it (3.12+:
``Connection.setconfig``), and an authorizer (every Python) that denies any access made
from inside a trigger or a view (this program's schema has none) and ``PRAGMA
writable_schema``.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from urllib.parse import quote

from ...errors import ProjectFileError, StoreError
from .schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
# tables SQLite itself may add (ANALYZE statistics; AUTOINCREMENT counters)
_SQLITE_OWN = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})
_CORRUPT = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def harden(con: sqlite3.Connection) -> None:
    """Make ``con`` run nothing a project file brings along (see the module docstring)."""
    con.execute("PRAGMA trusted_schema = OFF")
    if hasattr(con, "setconfig"):  # Python 3.12+: SQLITE_DBCONFIG_DEFENSIVE
        con.setconfig(sqlite3.SQLITE_DBCONFIG_DEFENSIVE, True)  # type: ignore[attr-defined]
    con.set_authorizer(_authorize)


def _authorize(action: int, arg1: str | None, arg2: str | None, _db: str | None,
               source: str | None) -> int:
    if source is not None:  # inside a trigger or a view: none of them is ours
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() == "writable_schema" \
            and arg2 is not None:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


@functools.cache
def expected_schema(version: int) -> frozenset[tuple[str, str, str, str]]:
    """(type, name, table, sql) of every schema object a version-``version`` project has."""
    con = sqlite3.connect(":memory:")
    try:
        for target in range(1, version + 1):
            for statement in MIGRATIONS[target]:
                con.execute(statement)
        return frozenset(_schema_rows(con))
    finally:
        con.close()


def _schema_rows(con: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
    return [
        (kind, name, table, " ".join((sql or "").split()))
        for kind, name, table, sql in con.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master")
    ]


def foreign_objects(con: sqlite3.Connection, version: int) -> list[str]:
    """Schema objects of ``con``'s database that a version-``version`` project does not
    have (or has with another definition), as "trigger 'x' on events" phrases."""
    expected = expected_schema(version)
    found = []
    for row in _schema_rows(con):
        kind, name, table, _sql = row
        if row in expected or (kind == "table" and name in _SQLITE_OWN):
            continue
        found.append(f"{kind} {name!r}" + (f" on {table}" if table != name else "")
                     + (" (changed)" if any(e[:2] == row[:2] for e in expected) else ""))
    return found


def check_file(path: Path, timeout: float = 10.0) -> None:
    """Refuse a project file that must not be opened for writing (read-only checks)."""
    name = str(path)
    with open(path, "rb") as handle:
        head = handle.read(100)
    if not head.startswith(SQLITE_MAGIC):
        what = ("its first bytes are all zero (the file was overwritten or damaged, e.g. by "
                "a crash or a failing disk)" if not head.strip(b"\0")
                else "it is not an SQLite database")
        raise ProjectFileError(
            f"{name} is not a project file: {what}. Nothing was changed. Open another "
            "project, or restore this one from a backup.", name)
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True, timeout=timeout, check_same_thread=False)
    except sqlite3.Error as error:
        raise StoreError(f"Cannot open the project {name}: {error}.") from None
    try:
        harden(con)
        inspect(con, name, path.stat().st_size, head)
    except sqlite3.DatabaseError as error:
        if getattr(error, "sqlite_errorname", "").startswith(_CORRUPT) or type(error) is \
                sqlite3.DatabaseError:
            raise damaged(name, str(error), path.stat().st_size, head) from None
        if getattr(error, "sqlite_errorname", "").startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            raise busy(name) from None
        # e.g. a read-only connection cannot replay a crashed writer's journal: the
        # read-write open does that (normal recovery) and checks again before writing
        raise _Recheck from None
    finally:
        con.close()


class _Recheck(Exception):
    """The read-only check could not run; check on the read-write connection instead."""


def inspect(con: sqlite3.Connection, name: str, size: int, head: bytes) -> None:
    """Application id, schema version, schema objects and integrity of ``con``'s file."""
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = con.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if app_id != APPLICATION_ID and (tables or version):
        raise ProjectFileError(
            f"{name} is an SQLite database but not a project of this program. Nothing was "
            "changed. Choose a project file (or a new file name to create one).", name)
    if version > SCHEMA_VERSION:
        raise ProjectFileError(
            f"{name} was written by a newer version of this program (schema {version}, "
            f"this one knows up to {SCHEMA_VERSION}). Nothing was changed. Update the "
            "program to open it.", name)
    foreign = foreign_objects(con, version) if version else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                          else "")
        raise ProjectFileError(
            f"{name} holds schema objects this program did not make ({shown}). They were "
            f"not run. Nothing was changed. Salvage its data into a new project: "
            f"`panns-sed project salvage {name} NEW.panns` (or the Salvage button).",
            name, salvageable=True)
    problems = [row[0] for row in con.execute("PRAGMA integrity_check(5)")]
    if problems != ["ok"]:
        raise damaged(name, "; ".join(problems), size, head)


def damaged(name: str, detail: str, size: int, head: bytes) -> ProjectFileError:
    page_size = int.from_bytes(head[16:18], "big") if len(head) >= 18 else 0
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(head[28:32], "big") if len(head) >= 32 else 0
    if page_size and pages and size < pages * page_size:
        detail = (f"the file is cut short: {size} bytes where its header says "
                  f"{pages * page_size}")
    return ProjectFileError(
        f"{name} is damaged ({detail}). Nothing was changed. Salvage what is readable "
        f"into a new project: `panns-sed project salvage {name} NEW.panns` (or the "
        "Salvage button), or restore it from a backup.", name, salvageable=True)


def busy(name: str) -> StoreError:
    return StoreError(
        f"The project {name} is busy: another program (a second window, panns-sed) is "
        "writing to it. Try again when it has finished.")
