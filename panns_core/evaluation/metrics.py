"""Transitional alias of the old single-module API; use the family modules instead.

Kept only until :mod:`panns_core.training` imports :mod:`.event_based` and
:mod:`.segment_based` directly (its split into modules is under way).
"""

from __future__ import annotations

from .event_based import evaluate as event_based
from .segment_based import evaluate as segment_based

__all__ = ["event_based", "segment_based"]
