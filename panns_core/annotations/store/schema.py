"""The project database schema and its migrations (``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3
from typing import Final

from ...errors import StoreError

APPLICATION_ID: Final = 0x50414E4E  # "PANN": marks a file as one of our projects
SCHEMA_VERSION: Final = 1

# Status values are checked in Python (ops._check_status): a CHECK (status IN ...)
# constraint made bulk inserts 60% slower.

# MIGRATIONS[n] turns a version n-1 database into version n. Never edit a released
# entry: add a new one (and bump SCHEMA_VERSION) instead.
MIGRATIONS: Final[dict[int, tuple[str, ...]]] = {
    1: (
        """CREATE TABLE recordings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL UNIQUE,
            size INTEGER,
            sha256 TEXT,
            duration REAL,
            sample_rate INTEGER,
            channels INTEGER,
            added REAL NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX recordings_by_hash ON recordings(sha256)",
        """CREATE TABLE labels (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            mid TEXT,
            colour TEXT,
            hotkey TEXT UNIQUE,
            position INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
            onset REAL NOT NULL,
            "offset" REAL NOT NULL,
            label TEXT NOT NULL,
            confidence REAL,
            low_freq REAL,
            high_freq REAL,
            source TEXT NOT NULL,
            status TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created REAL NOT NULL,
            modified REAL NOT NULL,
            CHECK (onset >= 0 AND "offset" >= onset AND "offset" < 1e12)
        )""",
        'CREATE INDEX events_by_time ON events(recording_id, onset, "offset")',
        """CREATE TABLE models (
            id TEXT PRIMARY KEY,
            path TEXT,
            sha256 TEXT,
            architecture TEXT,
            labels TEXT,
            metadata TEXT,
            added REAL NOT NULL
        )""",
        """CREATE TABLE training_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            started REAL NOT NULL,
            finished REAL,
            status TEXT NOT NULL DEFAULT 'running',
            base_model TEXT,
            output_model TEXT,
            params TEXT,
            metrics TEXT,
            note TEXT NOT NULL DEFAULT ''
        )""",
        """CREATE TABLE score_cache (
            recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
            model_id TEXT NOT NULL,
            path TEXT NOT NULL,
            audio_hash TEXT,
            created REAL NOT NULL,
            PRIMARY KEY (recording_id, model_id)
        )""",
    ),
}


def migrate(con: sqlite3.Connection, name: str) -> int:
    """Bring the database to SCHEMA_VERSION; returns the version it had before."""
    app_id = con.execute("PRAGMA application_id").fetchone()[0]
    version = con.execute("PRAGMA user_version").fetchone()[0]
    tables = con.execute("SELECT count(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
    if app_id != APPLICATION_ID and (tables or version):
        raise StoreError(
            f"{name} is an SQLite database but not a project of this program. "
            "Choose a project file (or a new file name to create one)."
        )
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{name} was written by a newer version of this program (schema {version}, "
            f"this one knows up to {SCHEMA_VERSION}). Update the program to open it."
        )
    if version == SCHEMA_VERSION:
        return version
    con.execute("BEGIN IMMEDIATE")
    try:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[target]:
                con.execute(statement)
        con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return version
