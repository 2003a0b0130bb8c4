"""Finding Ray (an optional extra) and joining or starting a cluster."""

from __future__ import annotations

import logging
import os
import socket
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
        _check_reachable(address)
        try:
            ray.init(address=address, **options)
        except (ConnectionError, ValueError, RuntimeError) as error:
            raise PannsError(f"Cannot reach the Ray cluster at {address} ({error}); start it "
                             "there with `ray start --head`, or check the address.") from None
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when nothing listens at ``address`` (Ray itself keeps
    retrying an unreachable head for minutes)."""
    host_port = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = host_port.rpartition(":")
    if not sep or not port.isdigit():
        raise PannsError(f"--ray {address!r}: give the head node as HOST:PORT (ray start "
                         "--head prints it, e.g. 10.0.0.5:6379) or ray://HOST:10001.")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        raise PannsError(f"Cannot reach the Ray cluster at {address} ({error.strerror or error}); "
                         "start it there with `ray start --head`, or check the address.") from None
