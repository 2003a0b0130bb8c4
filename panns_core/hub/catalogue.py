"""The catalogue of released PANNs checkpoints that can be downloaded.

The data lives in ``panns_core/data/checkpoints.json`` (file, architecture, sample rate,
framewise or not, mAP, size, md5/sha256). Each entry gets a name a user can type: the
architecture name (``Cnn14_DecisionLevelMax``). Lookups ignore case and ``-``/``_`` and
also accept the Zenodo file name (``Cnn14_DecisionLevelMax_mAP=0.385.pth``), its stem, and
a timm-style ``arch.tag`` alias (``cnn14_decisionlevelmax.audioset_32k``).

Two environment variables exist for tests, mirrors and offline installs:

- ``PANNS_ANNOTATOR_CATALOGUE``: path of a catalogue JSON used instead of the shipped one.
- ``PANNS_ANNOTATOR_MODEL_URL_BASE``: base URL that replaces Zenodo for entries without
  an explicit ``url`` (``<base>/<file, url-quoted>?download=1``).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ..data import resource_path
from ..errors import ModelNotFoundError, PannsError

CATALOGUE_ENV = "PANNS_ANNOTATOR_CATALOGUE"
URL_BASE_ENV = "PANNS_ANNOTATOR_MODEL_URL_BASE"
ZENODO_URL_BASE = "https://zenodo.org/records/3987831/files"
DEFAULT_MODEL = "Cnn14_DecisionLevelMax"
"""The catalogue model used for detection when the user has not chosen one."""


@dataclass(frozen=True)
class CatalogueEntry:
    """One downloadable checkpoint."""

    name: str
    file: str
    architecture: str
    sample_rate: int
    framewise: bool
    mean_ap: float | None
    """AudioSet mAP reported by the authors."""
    size: int | None
    """File size in bytes, None where unknown."""
    md5: str | None
    sha256: str | None
    url: str | None = None
    """Explicit URL; None means ``<url base>/<file>?download=1``."""
    classes_num: int = 527
    license: str = "CC-BY-4.0"
    note: str = ""

    @property
    def tag(self) -> str:
        """timm-style ``arch.tag`` alias, e.g. ``cnn14_decisionlevelmax.audioset_32k``."""
        return f"{self.architecture.lower()}.audioset_{self.sample_rate // 1000}k"

    @property
    def hash_name(self) -> str:
        """The hash a download is checked against: sha256 where known, else md5."""
        return "sha256" if self.sha256 else "md5"

    def download_url(self, base_url: str | None = None) -> str:
        """Where to fetch the file. ``base_url`` beats the env var, which beats Zenodo."""
        if base_url is None and self.url:
            return self.url
        base = base_url or os.environ.get(URL_BASE_ENV) or ZENODO_URL_BASE
        return f"{base.rstrip('/')}/{quote(self.file, safe='')}?download=1"

    def aliases(self) -> set[str]:
        stem = self.file.rsplit(".", 1)[0]
        return {_key(s) for s in (self.name, self.file, stem, self.tag, self.architecture)}


class Catalogue:
    """The downloadable checkpoints, with forgiving name lookup."""

    def __init__(self, entries: list[CatalogueEntry], default: str = DEFAULT_MODEL,
                 source: Path | None = None) -> None:
        self.entries = list(entries)
        self.source = source
        self._index: dict[str, CatalogueEntry] = {}
        for entry in self.entries:
            for alias in entry.aliases():
                self._index.setdefault(alias, entry)
        self.default_name = default

    def __iter__(self):
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def find(self, name: str) -> CatalogueEntry | None:
        """The entry for a name, file name or alias (any case), or None."""
        return self._index.get(_key(name))

    def get(self, name: str) -> CatalogueEntry:
        entry = self.find(name)
        if entry is None:
            raise ModelNotFoundError(
                f"{name!r} is not in the model catalogue. Available: "
                f"{', '.join(self.names())}. `panns-sed models list` shows them."
            )
        return entry

    def default(self) -> CatalogueEntry:
        return self.get(self.default_name)


def _key(name: str) -> str:
    return name.strip().casefold().replace("-", "_")


def load_catalogue(path: str | os.PathLike[str] | None = None) -> Catalogue:
    """Read a catalogue JSON: ``path``, else ``$PANNS_ANNOTATOR_CATALOGUE``, else shipped."""
    if path is None:
        path = os.environ.get(CATALOGUE_ENV) or resource_path("checkpoints.json")
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = [_entry(item) for item in data["checkpoints"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PannsError(
            f"The model catalogue {path} cannot be read ({error}). Fix or remove the file"
            f" (or unset {CATALOGUE_ENV})."
        ) from error
    default = data.get("default") or DEFAULT_MODEL
    catalogue = Catalogue(entries, default=default, source=path)
    if catalogue.find(default) is None and entries:
        catalogue.default_name = entries[0].name
    return catalogue


def _entry(item: dict) -> CatalogueEntry:
    architecture = str(item["architecture"])
    return CatalogueEntry(
        name=str(item.get("name") or architecture),
        file=str(item["file"]),
        architecture=architecture,
        sample_rate=int(item["sample_rate"]),
        framewise=bool(item.get("framewise", False)),
        mean_ap=None if item.get("mAP") is None else float(item["mAP"]),
        size=None if item.get("bytes") is None else int(item["bytes"]),
        md5=(item.get("md5") or None),
        sha256=(item.get("sha256") or None),
        url=item.get("url") or None,
        classes_num=int(item.get("classes_num", 527)),
        license=str(item.get("license", "CC-BY-4.0")),
        note=str(item.get("note", "")),
    )
