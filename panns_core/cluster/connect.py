"""Finding Ray (an optional extra) and joining or starting a cluster."""

from __future__ import annotations

import logging
import os
from typing import Any

from ..errors import PannsError

INSTALL_HINT = ('Detection on Ray needs the cluster extra: pip install "panns-annotator[cluster]" '
                '(or pip install "ray>=2.50,<3").')  # fmt: skip


def require_ray() -> Any:
    """The ``ray`` module, or a PannsError saying in one line how to install it."""
    try:
        import ray
    except ImportError:
        raise PannsError(INSTALL_HINT) from None
    return ray


def connect(address: str | None, *, cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` ("auto": this machine's cluster or RAY_ADDRESS,
    else a new local one; None: a new local one with ``cpus`` CPUs). Returns True when this
    call connected (the caller disconnects at the end); False when Ray was connected
    already (a program or test that called ``ray.init`` itself)."""
    ray = require_ray()
    if ray.is_initialized():
        return False
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "logging_level": logging.WARNING}  # fmt: skip
    local = {"address": "local", "num_cpus": cpus, **options}
    if address is None:
        ray.init(**local)
    elif address == "auto":
        try:
            ray.init(address="auto", **options)
        except ConnectionError:  # no cluster here: start one on this machine
            if os.environ.get("RAY_ADDRESS"):
                raise PannsError(f"Cannot reach the Ray cluster at RAY_ADDRESS="
                                 f"{os.environ['RAY_ADDRESS']}; start it or unset it.") from None
            ray.init(**local)
    else:
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise PannsError(f"Cannot reach the Ray cluster at {address} ({error}); start it "
                             "there with `ray start --head`, or check the address.") from None
    return True
