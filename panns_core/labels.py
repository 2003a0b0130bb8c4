"""AudioSet class labels (527 classes) with lookup by index, display name and mid."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache

from .data import resource_path
from .errors import PannsError


@dataclass(frozen=True)
class AudioSetClass:
    index: int
    mid: str
    name: str


class AudioSetLabels:
    """The AudioSet ontology classes as the PANNs models order their outputs."""

    def __init__(self, classes: list[AudioSetClass]) -> None:
        self.classes = classes
        self._by_name = {c.name.casefold(): c for c in classes}
        self._by_mid = {c.mid: c for c in classes}

    def __len__(self) -> int:
        return len(self.classes)

    def __iter__(self):
        return iter(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    def by_index(self, index: int) -> AudioSetClass:
        if not 0 <= index < len(self.classes):
            raise PannsError(f"AudioSet class index {index} is out of range 0..{len(self) - 1}.")
        return self.classes[index]

    def by_name(self, name: str) -> AudioSetClass:
        try:
            return self._by_name[name.casefold()]
        except KeyError:
            raise PannsError(
                f"{name!r} is not an AudioSet class name. `panns-sed labels` lists them."
            ) from None

    def by_mid(self, mid: str) -> AudioSetClass:
        try:
            return self._by_mid[mid]
        except KeyError:
            raise PannsError(f"{mid!r} is not an AudioSet class id (mid).") from None

    def find(self, key: str) -> AudioSetClass | None:
        """A class by display name (any case) or mid, or None."""
        return self._by_name.get(key.casefold()) or self._by_mid.get(key)


@cache
def audioset_labels() -> AudioSetLabels:
    """The 527 AudioSet classes shipped in ``panns_core/data/class_labels_indices.csv``."""
    with open(resource_path("class_labels_indices.csv"), newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    classes = [AudioSetClass(int(r["index"]), r["mid"], r["display_name"]) for r in rows]
    return AudioSetLabels(classes)
