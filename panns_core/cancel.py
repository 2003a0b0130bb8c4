"""The one cancellation type that every long job takes (detection, download, training,
envelope building): anything with ``is_set()``, such as a :class:`threading.Event`.

Jobs poll it between units of work (a chunk, a download block, a training step) and stop
cleanly when it is set; :class:`~panns_core.errors.Cancelled` tells the caller so.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CancelToken(Protocol):
    def is_set(self) -> bool: ...


def is_cancelled(token: CancelToken | None) -> bool:
    """True when a token was given and it is set."""
    return token is not None and token.is_set()
