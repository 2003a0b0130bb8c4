"""AudioSet class labels (527 classes) with lookup by index, display name and mid."""

from __future__ import annotations

import csv
from collections.abc import Iterable
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


def split_label_list(text: str, known: Iterable[str] = ()) -> list[str]:
    """Labels typed as one comma-separated line: ``Dog, Cattle, bovinae, Bird``.

    Class names may hold commas themselves (AudioSet's ``Cattle, bovinae``), so runs of
    pieces that together spell a ``known`` label are joined back (longest first) and
    spelled as known. A line with double quotes is read by the csv rules instead
    (``"Cattle, bovinae", Dog``), each field as it is.
    """
    names = {name.casefold(): name for name in known}
    if '"' in text:
        fields = next(csv.reader([text], skipinitialspace=True), [])
        return [names.get(f.strip().casefold(), f.strip()) for f in fields if f.strip()]
    pieces = [p.strip() for p in text.split(",")]
    longest = max((name.count(",") for name in names.values()), default=0) + 1
    out: list[str] = []
    i = 0
    while i < len(pieces):
        if not pieces[i]:
            i += 1
            continue
        for n in range(min(longest, len(pieces) - i), 0, -1):
            joined = ", ".join(pieces[i:i + n])
            if n == 1 or joined.casefold() in names:
                out.append(names.get(joined.casefold(), joined))
                i += n
                break
    return out
