"""The registry of installed models: downloaded, imported and fine-tuned checkpoints.

The index is a small SQLite file in :func:`panns_core.paths.models_dir` (transactions
make concurrent writers safe: the GUI and a fine-tuning process may both register
models). Checkpoint files live next to it; paths inside that folder are stored relative,
so a portable install can be moved. Names are unique regardless of case.

Which model is the default (:meth:`ModelRegistry.default_model`): the one set with
:meth:`~ModelRegistry.set_default`; else the catalogue default (Cnn14_DecisionLevelMax)
if installed; else the newest installed framewise (SED) model; else the newest model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
from collections.abc import Callable
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..cancel import CancelToken
from ..errors import CheckpointError, ModelNotFoundError, PannsError, StoreError
from ..paths import models_dir
from .catalogue import Catalogue, CatalogueEntry, load_catalogue
from .download import DownloadProgress, download_file, file_hash

INDEX_NAME = "registry.sqlite3"
ORIGINS = ("catalogue", "import", "fine-tune")
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    architecture TEXT NOT NULL,
    classes_num INTEGER NOT NULL,
    labels TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    framewise INTEGER,
    origin TEXT NOT NULL,
    parent TEXT,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created TEXT NOT NULL,
    metrics TEXT NOT NULL DEFAULT '{}',
    source TEXT,
    catalogue_name TEXT
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT);
"""
_FIELDS = ("name", "architecture", "classes_num", "labels", "sample_rate", "framewise",
           "origin", "parent", "file", "size", "sha256", "created", "metrics", "source",
           "catalogue_name")
_NAME_OK = re.compile(r"[^\s/\\][^/\\]{0,119}")


@dataclass(frozen=True)
class ModelRecord:
    """One installed model."""

    name: str
    architecture: str
    classes_num: int
    labels: tuple[str, ...]
    sample_rate: int
    framewise: bool | None
    origin: str
    """"catalogue", "import" or "fine-tune"."""
    parent: str | None
    path: Path
    size: int
    sha256: str
    created: str
    """ISO 8601 time (UTC) the model was installed."""
    metrics: dict[str, Any] = field(default_factory=dict)
    source: str | None = None
    """Download URL or the path the file was imported from."""
    catalogue_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        data["labels"] = list(self.labels)
        return data


class ModelRegistry:
    """Installed models in ``root`` (default: :func:`models_dir`)."""

    def __init__(self, root: str | os.PathLike[str] | None = None,
                 catalogue: Catalogue | None = None) -> None:
        self.root = Path(root) if root is not None else models_dir(create=False)
        self._catalogue = catalogue
        self.index_path = self.root / INDEX_NAME

    @property
    def catalogue(self) -> Catalogue:
        if self._catalogue is None:
            self._catalogue = load_catalogue()
        return self._catalogue

    # -- reading -------------------------------------------------------------------------

    def list_models(self) -> list[ModelRecord]:
        """Installed models, oldest first."""
        rows = self._select("ORDER BY rowid")
        return [self._record(row) for row in rows]

    def find(self, name: str) -> ModelRecord | None:
        """The installed model called ``name`` (any case), or the installed copy of the
        catalogue entry ``name`` refers to (file name, alias), or None."""
        rows = self._select("WHERE name = ?", (name.strip(),))
        if not rows:
            entry = self.catalogue.find(name)
            if entry is not None:
                rows = self._select("WHERE catalogue_name = ? ORDER BY rowid LIMIT 1",
                                    (entry.name,))
        return self._record(rows[0]) if rows else None

    def get_model(self, name: str) -> ModelRecord:
        record = self.find(name)
        if record is None:
            raise ModelNotFoundError(self._not_installed_message(name))
        return record

    def default_name(self) -> str | None:
        """The name set with :meth:`set_default`, if that model is still installed."""
        if not self.index_path.exists():
            return None
        with self._db() as db:
            row = db.execute("SELECT value FROM settings WHERE key = 'default'").fetchone()
        record = None if row is None else self.find(row[0])
        return None if record is None else record.name

    def default_model(self) -> ModelRecord:
        """The model used when none is named (rules in the module docstring)."""
        chosen = self.default_name()
        if chosen is not None:
            return self.get_model(chosen)
        record = self.find(self.catalogue.default_name)
        if record is not None:
            return record
        models = self.list_models()
        framewise = [m for m in models if m.framewise]
        if framewise or models:
            return (framewise or models)[-1]
        entry = self.catalogue.default()
        size = f", {entry.size / 1e6:.0f} MB" if entry.size else ""
        raise ModelNotFoundError(
            "No model is installed yet. Download the default detection model with "
            f"`panns-sed models download {entry.name}` (once{size}), or import a checkpoint "
            "you already have with `panns-sed models import PATH`."
        )

    # -- installing ----------------------------------------------------------------------

    def install_download(
        self,
        name: str,
        progress: Callable[[DownloadProgress], None] | None = None,
        cancel: CancelToken | None = None,
        *,
        base_url: str | None = None,
        **download_options: Any,
    ) -> ModelRecord:
        """Download a catalogue model, verify it and register it; if it is already
        installed, return it without downloading. ``download_options`` go to
        :func:`panns_core.hub.download.download_file` (timeout, retries, backoff)."""
        entry = self.catalogue.get(name)
        existing = self.find(entry.name)
        if existing is not None and existing.catalogue_name == entry.name:
            if existing.path.is_file():
                return existing
            self._delete_row(existing.name)  # file vanished: fetch it again
        elif existing is not None:
            raise StoreError(
                f"The name {entry.name!r} is taken by another installed model. Remove it "
                f"(`panns-sed models remove {existing.name}`) and download again."
            )
        dest = self.root / entry.file
        url = entry.download_url(base_url)
        result = download_file(url, dest, size=entry.size, sha256=entry.sha256, md5=entry.md5,
                               progress=progress, cancel=cancel, **download_options)
        sha256 = result.hash_value if result.hash_name == "sha256" else file_hash(dest)
        return self._insert(ModelRecord(
            name=entry.name, architecture=entry.architecture, classes_num=entry.classes_num,
            labels=_audioset_names(entry.classes_num), sample_rate=entry.sample_rate,
            framewise=entry.framewise, origin="catalogue", parent=None, path=dest,
            size=result.size, sha256=sha256, created=_now(),
            metrics={"audioset_mAP": entry.mean_ap} if entry.mean_ap is not None else {},
            source=url, catalogue_name=entry.name,
        ))

    def import_checkpoint(self, path: str | os.PathLike[str], name: str | None = None
                          ) -> ModelRecord:
        """Validate a local checkpoint and copy it into the registry.

        A file identical to a released checkpoint (by its catalogue hash) is registered
        as that catalogue model, so an offline machine can install one from a USB stick.
        """
        source = _existing_file(path)
        entry = self._catalogue_match(source)
        if entry is not None and (name is None or self.catalogue.find(name) is entry):
            self._check_new_name(entry.name, entry.name)
            loaded = _load(source)
            return self._place(loaded, source, entry.name, origin="catalogue", parent=None,
                               metrics={"audioset_mAP": entry.mean_ap}, move=False,
                               catalogue_name=entry.name)
        name = name if name is not None else source.stem
        self._check_new_name(name, None)  # before the (slower) load
        loaded = _load(source)
        return self._place(loaded, source, name, origin="import",
                           parent=loaded.metadata.get("parent"),
                           metrics=loaded.metadata.get("metrics") or {}, move=False)

    def register_checkpoint(
        self,
        path: str | os.PathLike[str],
        name: str,
        origin: str = "fine-tune",
        parent: str | None = None,
        metrics: dict[str, Any] | None = None,
        *,
        move: bool = False,
        replace: bool = False,
    ) -> ModelRecord:
        """Register a checkpoint (e.g. a fine-tuning result): validated, then copied (or
        moved) into the registry. ``replace`` swaps out an earlier model of that name that
        is not a catalogue model."""
        if origin not in ORIGINS:
            raise PannsError(f"origin must be one of {', '.join(ORIGINS)}, not {origin!r}.")
        source = _existing_file(path)
        loaded = _load(source)
        if replace:
            old = self.find(name)
            if old is not None and old.name.casefold() == name.casefold():
                if old.origin == "catalogue":
                    raise StoreError(f"{old.name!r} is a downloaded catalogue model; "
                                     "choose another name.")
                self.remove(old.name)
        parent = parent if parent is not None else loaded.metadata.get("parent")
        metrics = metrics if metrics is not None else loaded.metadata.get("metrics") or {}
        return self._place(loaded, source, name, origin=origin, parent=parent,
                           metrics=dict(metrics), move=move)

    # -- changing ------------------------------------------------------------------------

    def remove(self, name: str) -> ModelRecord:
        """Unregister a model and delete its file (only files inside the registry)."""
        record = self.get_model(name)
        self._delete_row(record.name)
        if _inside(record.path, self.root):
            record.path.unlink(missing_ok=True)
        return record

    def set_default(self, name: str) -> ModelRecord:
        record = self.get_model(name)
        with self._db() as db, db:
            db.execute("INSERT OR REPLACE INTO settings (key, value) VALUES ('default', ?)",
                       (record.name,))
        return record

    # -- internals -----------------------------------------------------------------------

    def _select(self, where: str, params: tuple = ()) -> list[tuple]:
        if not self.index_path.exists():  # reading never creates the registry
            return []
        with self._db() as db:
            return db.execute(f"SELECT {', '.join(_FIELDS)} FROM models {where}",
                              params).fetchall()

    @contextmanager
    def _db(self):
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(self.index_path, timeout=30)
        except sqlite3.Error as error:
            raise StoreError(f"Cannot open the model registry {self.index_path}: {error}. "
                             "Check the folder's permissions.") from error
        with closing(conn):
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(
                        f"The model registry {self.index_path} was written by a newer version "
                        "of panns-annotator. Update the program."
                    )
                if version < SCHEMA_VERSION:
                    with conn:
                        conn.executescript(_SCHEMA)
                        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                yield conn
            except sqlite3.DatabaseError as error:
                raise StoreError(
                    f"The model registry {self.index_path} is damaged ({error}). Move it away; "
                    "the model files next to it can be imported again."
                ) from error

    def _record(self, row: tuple) -> ModelRecord:
        data = dict(zip(_FIELDS, row))
        file = Path(data.pop("file"))
        return ModelRecord(
            path=file if file.is_absolute() else self.root / file,
            labels=tuple(json.loads(data.pop("labels"))),
            metrics=json.loads(data.pop("metrics") or "{}"),
            framewise=None if data["framewise"] is None else bool(data.pop("framewise")),
            **{k: v for k, v in data.items() if k != "framewise"},
        )

    def _insert(self, record: ModelRecord) -> ModelRecord:
        file = (record.path.relative_to(self.root).as_posix()
                if _inside(record.path, self.root) else str(record.path))
        values = {
            **record.to_dict(), "file": file, "labels": json.dumps(list(record.labels)),
            "metrics": json.dumps(record.metrics),
            "framewise": None if record.framewise is None else int(record.framewise),
        }
        try:
            with self._db() as db, db:
                db.execute(f"INSERT INTO models ({', '.join(_FIELDS)}) VALUES "
                           f"({', '.join('?' for _ in _FIELDS)})",
                           [values[k] for k in _FIELDS])
        except sqlite3.IntegrityError:
            raise StoreError(f"A model named {record.name!r} is already installed. Choose "
                             "another name (`--name`) or remove the old one first.") from None
        return record

    def _delete_row(self, name: str) -> None:
        with self._db() as db, db:
            db.execute("DELETE FROM models WHERE name = ?", (name,))
            db.execute("DELETE FROM settings WHERE key = 'default' AND value = ? COLLATE NOCASE",
                       (name,))

    def check_new_name(self, name: str) -> None:
        """StoreError (saying what to do) unless a new model may take ``name``."""
        self._check_new_name(name, None)

    def _check_new_name(self, name: str, catalogue_name: str | None) -> None:
        if not _NAME_OK.fullmatch(name) or name != name.strip():
            raise StoreError(f"{name!r} is not a usable model name: use 1-120 characters "
                             "without slashes or surrounding spaces.")
        entry = self.catalogue.find(name)
        if entry is not None and entry.name != catalogue_name:
            raise StoreError(
                f"The name {name!r} belongs to the catalogue model {entry.name}, and this file "
                "is not that release (its hash differs). Choose another name with `--name`."
            )
        if self.find(name) is not None:
            raise StoreError(f"A model named {name!r} is already installed. Choose another "
                             "name (`--name`) or remove the old one first.")

    def _place(self, loaded, source: Path, name: str, *, origin: str, parent: str | None,
               metrics: dict, move: bool, catalogue_name: str | None = None) -> ModelRecord:
        self._check_new_name(name, catalogue_name)
        self.root.mkdir(parents=True, exist_ok=True)
        dest = self._free_path(name)
        sha256 = _copy_hashed(source, dest, move=move)
        labels = tuple(loaded.labels)
        try:
            return self._insert(ModelRecord(
                name=name, architecture=loaded.architecture, classes_num=len(labels),
                labels=labels, sample_rate=int(loaded.feature_config.sample_rate),
                framewise=_framewise(loaded.architecture), origin=origin, parent=parent,
                path=dest, size=dest.stat().st_size, sha256=sha256, created=_now(),
                metrics={k: v for k, v in metrics.items() if v is not None},
                source=str(source), catalogue_name=catalogue_name,
            ))
        except BaseException:
            if not move:
                dest.unlink(missing_ok=True)
            raise

    def _free_path(self, name: str) -> Path:
        stem = re.sub(r"[^A-Za-z0-9._+=-]+", "_", name).strip("._") or "model"
        dest = self.root / f"{stem}.pth"
        n = 2
        while dest.exists() or (self.root / (dest.name + ".part")).exists():
            dest = self.root / f"{stem}-{n}.pth"
            n += 1
        return dest

    def _catalogue_match(self, path: Path) -> CatalogueEntry | None:
        size = path.stat().st_size
        candidates = [e for e in self.catalogue if e.size in (None, size)]
        if not candidates:
            return None
        sha, md5 = file_hash(path, "sha256"), file_hash(path, "md5")
        for entry in candidates:
            if (entry.sha256 and entry.sha256 == sha) or (not entry.sha256 and entry.md5 == md5):
                return entry
        return None

    def _not_installed_message(self, name: str) -> str:
        entry = self.catalogue.find(name)
        if entry is not None:
            return (f"Model {entry.name} is not installed. Download it with "
                    f"`panns-sed models download {entry.name}`.")
        installed = ", ".join(m.name for m in self.list_models()) or "none"
        return (f"No installed model is called {name!r} (installed: {installed}). "
                "`panns-sed models list` shows installed and downloadable models; "
                "`panns-sed models import PATH` adds a checkpoint file.")


# -- module-level API (what the GUI, CLI and training call) --------------------------------


def get_registry() -> ModelRegistry:
    """The registry in the current data directory (honours PANNS_ANNOTATOR_HOME)."""
    return ModelRegistry()


def list_models() -> list[ModelRecord]:
    return get_registry().list_models()


def get_model(name: str) -> ModelRecord:
    return get_registry().get_model(name)


def install_download(name: str, progress: Callable[[DownloadProgress], None] | None = None,
                     cancel: CancelToken | None = None, **options: Any) -> ModelRecord:
    return get_registry().install_download(name, progress=progress, cancel=cancel, **options)


def import_checkpoint(path: str | os.PathLike[str], name: str | None = None) -> ModelRecord:
    return get_registry().import_checkpoint(path, name)


def register_checkpoint(path: str | os.PathLike[str], name: str, origin: str = "fine-tune",
                        parent: str | None = None, metrics: dict[str, Any] | None = None,
                        **options: Any) -> ModelRecord:
    return get_registry().register_checkpoint(path, name, origin, parent, metrics, **options)


def remove(name: str) -> ModelRecord:
    return get_registry().remove(name)


def set_default(name: str) -> ModelRecord:
    return get_registry().set_default(name)


def default_model() -> ModelRecord:
    return get_registry().default_model()


# -- helpers ------------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _existing_file(path: str | os.PathLike[str]) -> Path:
    source = Path(path).expanduser()
    if not source.is_file():
        raise CheckpointError(f"No checkpoint file at {source}. Check the path.")
    return source


def _load(path: Path):
    """Validate with the checkpoint loader; anything it cannot read is a CheckpointError."""
    from .checkpoints import load_checkpoint

    try:
        return load_checkpoint(path)
    except PannsError:
        raise
    except Exception as error:  # a loader bug or an exotic file: still a clear message
        raise CheckpointError(
            f"{path} is not a checkpoint this program can read ({type(error).__name__}: "
            f"{error}). Import a PANNs .pth file or one saved by panns-annotator."
        ) from error


def _framewise(architecture: str) -> bool | None:
    try:
        from ..models import architecture_spec

        return bool(architecture_spec(architecture).framewise)
    except (ImportError, PannsError, KeyError):
        return None


def _audioset_names(classes_num: int) -> tuple[str, ...]:
    from ..labels import audioset_labels

    names = audioset_labels().names
    if classes_num != len(names):
        raise PannsError(f"Catalogue entry has {classes_num} classes; AudioSet has {len(names)}.")
    return tuple(names)


def _copy_hashed(source: Path, dest: Path, *, move: bool) -> str:
    """Copy (or move) ``source`` to ``dest`` atomically; returns the sha256 of the bytes."""
    tmp = dest.with_name(dest.name + ".part")
    try:
        if move and _same_device(source, dest.parent):
            os.replace(source, tmp)
            sha256 = file_hash(tmp)
        else:
            digest = hashlib.sha256()
            with open(source, "rb") as src, open(tmp, "wb") as out:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            if move:
                source.unlink()
        os.replace(tmp, dest)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"Cannot copy {source} into the model folder {dest.parent}: {error}. "
                         "Check free space and permissions.") from error
    return sha256


def _same_device(a: Path, b: Path) -> bool:
    try:
        return a.stat().st_dev == b.stat().st_dev
    except OSError:
        return False
