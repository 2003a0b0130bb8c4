"""Detection of whole archives on a Ray cluster (the optional ``cluster`` extra).

``panns-sed detect ARCHIVE/ --out RESULTS/ --ray [auto|ADDRESS] [--workers N]`` and
:func:`detect_archive` send recordings (long ones in pieces of whole detection windows,
exactly as one process cuts them) to a pool of Ray actors that each hold a loaded model
(:mod:`.worker`), and write every recording to the results folder
(:mod:`panns_core.detection.results`) as soon as it is complete: the same layout as
single-process detection, resumable, with retries (:mod:`.runner`). Nothing here imports
Ray until a run starts (:mod:`.connect` says in one line how to install it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..detection.results import RunSummary


def detect_archive(*args: Any, **kwargs: Any) -> RunSummary:
    """See :func:`panns_core.cluster.runner.detect_archive`."""
    from .runner import detect_archive as run

    return run(*args, **kwargs)


__all__ = ["detect_archive"]
