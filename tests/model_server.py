"""A real HTTP server on loopback that serves model files, with scripted misbehaviour.

Used by test_download.py, test_registry.py and test_cli_models.py. Each request takes
the next mode from ``server.script`` (``"ok"`` once the script is empty):

- ``ok``: 200, or 206 with Content-Range for a ``Range: bytes=N-`` request
- ``ignore_range``: 200 with the whole file even when a range was asked for
- ``drop``: headers for the whole answer, then half the bytes, then the connection closes
- ``stall``: headers and a quarter of the bytes, then silence until released
- ``stall_headers``: no answer at all until released
- ``wrong``: the right length with one byte changed
- ``404`` / ``500``: that status
Every request is logged as (method, raw path, Range header or None).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


class ModelServer:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.script: list[str] = []
        self.log: list[tuple[str, str, str | None]] = []
        self.release = threading.Event()
        self.stall_seconds = 10.0  # how long a stall lasts unless released
        self.stalls_outlived = 0  # stalls that ran their full length (the client waited)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/files"

    def ranges(self) -> list[str | None]:
        return [r for _, _, r in self.log]

    def __enter__(self) -> ModelServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def _stall(self) -> None:
        if not self.release.wait(self.stall_seconds):
            with self._lock:
                self.stalls_outlived += 1

    def _next_mode(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else "ok"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        rng = h.headers.get("Range")
        self.log.append((h.command, h.path, rng))
        mode = self._next_mode()
        path = urlsplit(h.path).path  # absolute-form paths come through a proxy
        name = unquote(path.rsplit("/", 1)[-1])
        if mode == "stall_headers":
            self._stall()
            return
        if mode in ("404", "500") or name not in self.files:
            code = 404 if mode == "404" or name not in self.files else 500
            h.send_response(code)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        data = self.files[name]
        if mode == "wrong":
            data = data[:100] + bytes([data[100] ^ 0xFF]) + data[101:]
        start = 0
        match = _RANGE.fullmatch(rng or "")
        if match and mode != "ignore_range":
            start = int(match.group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        if mode == "drop":
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            h.connection.shutdown(socket.SHUT_RDWR)
            h.close_connection = True
            return
        if mode == "stall":
            h.wfile.write(body[: len(body) // 4])
            h.wfile.flush()
            self._stall()
            return
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            h.wfile.write(body)


@functools.cache
def make_checkpoint_bytes(keys_json: Path, architecture: str = "Cnn6", seed: int = 0) -> bytes:
    """A real PANNs-format checkpoint (``{'model': state_dict}``) of ``architecture``,
    with the official keys and shapes and seeded random weights."""
    import io

    import torch

    spec = json.loads(keys_json.read_text())[architecture]
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in spec["keys"]:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.ones(shape)
        else:
            std = 1.0 / math.sqrt(max(1, math.prod(shape[1:]) if len(shape) > 1 else 1))
            state[key] = torch.randn(shape, generator=gen) * std
    buf = io.BytesIO()
    torch.save({"model": state, "iteration": 0}, buf)
    return buf.getvalue()


def catalogue_json(path: Path, entries: list[dict], default: str | None = None) -> Path:
    data = {"checkpoints": entries}
    if default:
        data["default"] = default
    path.write_text(json.dumps(data, indent=1))
    return path


def entry_for(data: bytes, file: str, architecture: str = "Cnn6", *, name: str | None = None,
              sha256: bool = True, framewise: bool = False) -> dict:
    entry = {
        "file": file, "architecture": architecture, "sample_rate": 32000,
        "framewise": framewise, "mAP": 0.343, "bytes": len(data),
        "md5": hashlib.md5(data).hexdigest(),
        "sha256": hashlib.sha256(data).hexdigest() if sha256 else None,
    }
    if name:
        entry["name"] = name
    return entry
