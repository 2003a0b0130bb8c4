"""Joining a Ray cluster: a wrong or unreachable address fails in seconds, in one line."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("ray", reason="the cluster extra (ray) is not installed")

from panns_core.cluster.connect import connect
from panns_core.errors import PannsError


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("address", ["nonsense", "ray://head", "10.0.0.1:port"])
def test_an_address_that_is_no_address_says_what_to_give(address):
    with pytest.raises(PannsError, match="HOST:PORT"):
        connect(address)


def test_nothing_listening_fails_at_once():
    port = _closed_port()
    for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
        with pytest.raises(PannsError, match=r"Cannot reach the Ray cluster.*ray start --head"):
            connect(address)
