"""Verified, resumable HTTP downloads (stdlib only).

``download_file`` streams into ``<dest>.part``, resumes an interrupted transfer with an
HTTP ``Range`` request (and starts over when a server ignores the range), retries
network failures and 5xx answers with exponential backoff, applies separate connect and
read timeouts, takes proxies from the environment (``http_proxy``, ``https_proxy``,
``no_proxy``, as urllib does), reports progress and can be cancelled. The finished file
is checked against the expected size and hash (sha256 where known, else md5) before it is
renamed into place atomically; a file that fails the check is deleted. A verified file
already at ``dest`` is never overwritten.

urllib rather than requests: no extra dependency for the engine, and everything needed
here (Range, redirects, env proxies, TLS verification) is in the standard library.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..cancel import CancelToken
from ..errors import Cancelled, DownloadError

CHUNK_SIZE = 256 * 1024
USER_AGENT = f"panns-annotator/{__version__} (+model download)"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


@dataclass(frozen=True)
class DownloadProgress:
    """Passed to the progress callback after every chunk (and once at the start)."""

    bytes_done: int
    total: int | None
    rate: float
    """Bytes per second over this call (resumed bytes not counted)."""
    eta: float | None
    """Seconds left at the current rate, None when unknown."""
    resumed_from: int

    @property
    def fraction(self) -> float | None:
        return self.bytes_done / self.total if self.total else None


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    size: int
    hash_name: str
    """Which hash was verified: "sha256" or "md5"."""
    hash_value: str
    resumed_from: int
    """Bytes already on disk (from an earlier attempt or call) when the last request began."""
    attempts: int
    already_present: bool = False


ProgressCallback = Callable[[DownloadProgress], None]


class _Retry(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def part_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def file_hash(path: Path, name: str = "sha256", chunk: int = 1 << 20) -> str:
    digest = hashlib.new(name)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    size: int | None = None,
    sha256: str | None = None,
    md5: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    timeout: float | tuple[float, float] = (15.0, 60.0),
    retries: int = 5,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
) -> DownloadResult:
    """Download ``url`` to ``dest``, verified by size and hash; see the module docstring.

    ``timeout`` is ``(connect, read)`` seconds (one number sets both): the read timeout is
    the longest silence tolerated mid-transfer. ``retries`` counts consecutive failed
    attempts that brought no new bytes; an attempt that made progress resets the count.
    Raises :class:`DownloadError` (HTTP 4xx, retries exhausted, wrong size or hash) or
    :class:`Cancelled` (the partial file is kept, so the next call resumes).
    """
    if not (sha256 or md5):
        raise DownloadError(f"Refusing to download {url}: no sha256 or md5 to verify it with.")
    dest = Path(dest)
    hash_name, expected_hash = ("sha256", sha256.lower()) if sha256 else ("md5", md5.lower())
    connect_timeout, read_timeout = timeout if isinstance(timeout, tuple) else (timeout, timeout)

    if dest.exists():
        got = file_hash(dest, hash_name)
        if got == expected_hash and (size is None or dest.stat().st_size == size):
            return DownloadResult(dest, dest.stat().st_size, hash_name, got, 0, 0, True)
        raise DownloadError(
            f"{dest} already exists but is not the expected file ({hash_name} {got}, expected "
            f"{expected_hash}). It is left alone: delete or move it, then download again."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest):
        return _download(url, dest, size, hash_name, expected_hash, progress, cancel,
                         connect_timeout, read_timeout, retries, backoff, max_backoff)


@contextmanager
def _exclusive(dest: Path):
    """One writer per file across processes (the GUI and the CLI may both try): an OS
    advisory lock on ``<dest>.lock``, released automatically if the process dies."""
    lock_path = dest.with_name(dest.name + ".lock")
    with open(lock_path, "a+b") as fh:
        try:
            if os.name == "nt":  # pragma: no cover - exercised on Windows only
                import msvcrt

                msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise DownloadError(
                f"{dest.name} is already being downloaded by another window or process. "
                "Wait for it to finish, or stop it and try again."
            ) from None
        try:
            yield
        finally:
            lock_path.unlink(missing_ok=True)


def _download(url, dest, size, hash_name, expected_hash, progress, cancel,
              connect_timeout, read_timeout, retries, backoff, max_backoff) -> DownloadResult:
    part = part_path(dest)
    opener = _build_opener(read_timeout)

    if size is not None and not free_space_ok(dest.parent, size - _size_of(part)):
        raise DownloadError(
            f"Not enough free space in {dest.parent} for {size} bytes. Free some space "
            f"(or set PANNS_ANNOTATOR_HOME to a bigger disk) and try again."
        )

    failures = 0
    attempts = 0
    total = size
    resumed_from = 0
    while True:
        _check_cancel(cancel, part)
        attempts += 1
        offset = _size_of(part)
        if total is not None and offset > total:
            part.unlink()
            offset = 0
        try:
            received = 0
            if total is None or offset < total:
                resumed_from, total, received = _attempt(
                    opener, url, part, offset, size, connect_timeout, progress, cancel
                )
            done = _size_of(part)
            if total is not None and done < total:
                reason = f"connection closed after {done} of {total} bytes"
                raise _Progressed(reason) if received else _Retry(reason)
            break
        except _Progressed:
            failures = 0  # new bytes arrived: resume at once
        except _Retry as error:
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"Download of {url} failed after {attempts} attempts: {error}. "
                    f"Check the network (or proxy settings) and run the download again; "
                    f"it resumes from {_size_of(part)} bytes."
                ) from None
            delay = min(max_backoff, backoff * 2 ** (failures - 1))
            if error.retry_after is not None:
                delay = min(max_backoff, max(delay, error.retry_after))
            _sleep(delay, cancel, part)

    return _verify_and_place(part, dest, url, total, size, hash_name, expected_hash,
                             resumed_from, attempts)


class _Progressed(Exception):
    """The attempt ended early but brought new bytes: retry at once, failure count reset."""


def _attempt(opener, url, part, offset, size, connect_timeout, progress, cancel):
    """One HTTP request; returns (resumed_from, total, bytes received)."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT,
                                                   "Accept-Encoding": "identity"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = opener.open(request, timeout=connect_timeout)
    except urllib.error.HTTPError as error:
        error.close()
        if error.code == 416 and offset:
            # Our partial file is as long as (or longer than) the resource: re-check it.
            match = re.match(r"bytes\s+\*/(\d+)", error.headers.get("Content-Range", ""))
            if match and int(match.group(1)) == offset:
                return offset, offset, 0
            part.unlink(missing_ok=True)
            raise _Retry("server refused to resume (HTTP 416); starting over") from None
        if error.code in _RETRY_STATUS:
            raise _Retry(f"HTTP {error.code} {error.reason}", _retry_after(error.headers)) \
                from None
        raise DownloadError(
            f"The server answered HTTP {error.code} {error.reason} for {url}. The file may have "
            f"moved: check the address (or the model URL base setting) and try again."
        ) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        raise _Retry(_reason(error)) from None

    received = 0
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if not match:
                part.unlink(missing_ok=True)
                raise _Retry("server sent a partial answer without Content-Range")
            start = int(match.group(1))
            total = None if match.group(3) == "*" else int(match.group(3))
            if start > offset:
                part.unlink(missing_ok=True)
                raise _Retry(f"server resumed at byte {start}, not {offset}; starting over")
            mode, resumed_from = "r+b", start
        else:  # 200: the server ignored the range (or there was none): start over.
            total = length
            mode, resumed_from = "wb", 0
        if size is not None and total is not None and total != size:
            part.unlink(missing_ok=True)
            raise DownloadError(
                f"The server offers {total} bytes for {url}, but the expected size is {size}. "
                f"This is not the expected file; nothing was kept. Try again later or "
                f"report the address."
            )
        total = total if total is not None else size
        if not part.exists():
            part.touch()
        started = time.monotonic()
        with open(part, mode) as fh:
            fh.seek(resumed_from)
            fh.truncate()
            done = resumed_from
            _report(progress, done, total, 0, started, resumed_from)
            while True:
                if cancel is not None and cancel.is_set():
                    fh.flush()
                    raise Cancelled(
                        f"Download cancelled; {done} bytes kept in {part.name}, "
                        f"the next download resumes from there."
                    )
                try:
                    block = response.read1(CHUNK_SIZE)
                except (OSError, http.client.HTTPException) as error:
                    fh.flush()
                    if received:
                        raise _Progressed(_reason(error)) from None
                    raise _Retry(_reason(error)) from None
                if not block:
                    break
                fh.write(block)
                received += len(block)
                done += len(block)
                _report(progress, done, total, received, started, resumed_from)
            fh.flush()
            os.fsync(fh.fileno())
    return resumed_from, total, received


def _verify_and_place(part, dest, url, total, size, hash_name, expected_hash,
                      resumed_from, attempts) -> DownloadResult:
    actual_size = part.stat().st_size
    if size is not None and actual_size != size:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"Downloaded {actual_size} bytes from {url} but expected {size}; nothing was kept. "
            f"Try again later."
        )
    got = file_hash(part, hash_name)
    if got != expected_hash:
        part.unlink(missing_ok=True)
        raise DownloadError(
            f"The file downloaded from {url} is not the expected one: {hash_name} expected "
            f"{expected_hash}, got {got} ({actual_size} bytes). Nothing was kept. The server "
            f"may have sent a broken file: try again later."
        )
    if dest.exists():  # someone else finished first: keep theirs if it is the same file
        if file_hash(dest, hash_name) == expected_hash:
            part.unlink(missing_ok=True)
            return DownloadResult(dest, dest.stat().st_size, hash_name, got, resumed_from,
                                  attempts, True)
        part.unlink(missing_ok=True)
        raise DownloadError(f"{dest} appeared during the download and differs; left it alone.")
    os.replace(part, dest)
    return DownloadResult(dest, actual_size, hash_name, got, resumed_from, attempts)


def _report(progress, done, total, received, started, resumed_from) -> None:
    if progress is None:
        return
    elapsed = time.monotonic() - started
    rate = received / elapsed if elapsed > 0 and received else 0.0
    eta = (total - done) / rate if rate > 0 and total is not None else None
    progress(DownloadProgress(done, total, rate, eta, resumed_from))


def _check_cancel(cancel, part) -> None:
    if cancel is not None and cancel.is_set():
        kept = part.stat().st_size if part.exists() else 0
        raise Cancelled(f"Download cancelled; {kept} bytes kept for resuming.")


def _sleep(delay: float, cancel, part) -> None:
    wait = getattr(cancel, "wait", None)
    if wait is not None:
        wait(delay)
    else:
        time.sleep(delay)
    _check_cancel(cancel, part)


def _retry_after(headers) -> float | None:
    value = headers.get("Retry-After", "") if headers else ""
    return float(value) if value.strip().isdigit() else None


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        error = error.reason if isinstance(error.reason, BaseException) else error
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "timed out waiting for the server"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def free_space_ok(directory: Path, needed: int) -> bool:
    try:
        return shutil.disk_usage(directory).free >= needed
    except OSError:
        return True


class _ReadTimeoutHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, read_timeout: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()  # uses the connect timeout
        if self._read_timeout is not None:
            self.sock.settimeout(self._read_timeout)


class _ReadTimeoutHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, read_timeout: float | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        if self._read_timeout is not None:
            self.sock.settimeout(self._read_timeout)


def _build_opener(read_timeout: float) -> urllib.request.OpenerDirector:
    """An opener whose sockets switch from the connect timeout to ``read_timeout``."""

    class HTTPHandler(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(_factory(_ReadTimeoutHTTPConnection), req)

    class HTTPSHandler(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(_factory(_ReadTimeoutHTTPSConnection), req,
                                context=self._context)

    def _factory(cls):
        def make(host, **kwargs):
            return cls(host, read_timeout=read_timeout, **kwargs)
        return make

    # build_opener adds ProxyHandler() (environment proxies) and redirect handling.
    return urllib.request.build_opener(HTTPHandler, HTTPSHandler)
