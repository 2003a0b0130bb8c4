"""The architecture registry: names -> :class:`ArchSpec` with a builder.

Builders are registered with :func:`register_architecture` (see ``architectures.py``);
this module imports no torch, so listing architectures stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from ..errors import PannsError
from .config import ArchSpec, Builder, FeatureConfig

if TYPE_CHECKING:
    from torch import nn

ARCHITECTURES: dict[str, ArchSpec] = {}


def register_architecture(spec: ArchSpec) -> Callable[[Builder], Builder]:
    """Decorator: register ``builder(classes_num, feature_config)`` under ``spec.name``."""

    def decorator(builder: Builder) -> Builder:
        if spec.name in ARCHITECTURES:
            raise ValueError(f"Architecture {spec.name!r} is registered twice")
        ARCHITECTURES[spec.name] = replace(spec, builder=builder)
        return builder

    return decorator


def list_architectures(reference_only: bool = False) -> list[str]:
    """Registered architecture names, in registration order."""
    return [n for n, s in ARCHITECTURES.items() if s.reference or not reference_only]


def architecture_spec(name: str) -> ArchSpec:
    """The spec of an architecture by name (exact, or ignoring case)."""
    spec = ARCHITECTURES.get(name)
    if spec is None:
        folded = {n.casefold(): s for n, s in ARCHITECTURES.items()}
        spec = folded.get(name.casefold())
    if spec is None:
        raise PannsError(
            f"Unknown architecture {name!r}. Known architectures: {', '.join(ARCHITECTURES)}."
        )
    return spec


def build_model(
    arch: str, classes_num: int = 527, feature_config: FeatureConfig | None = None
) -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (training mode, on CPU)."""
    spec = architecture_spec(arch)
    assert spec.builder is not None
    return spec.builder(int(classes_num), feature_config or spec.feature_config)
