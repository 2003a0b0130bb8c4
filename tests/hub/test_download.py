"""Downloads against a real HTTP server on loopback that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from model_server import ModelServer, make_checkpoint_bytes

from panns_core.errors import Cancelled, DownloadError, ModelNotFoundError
from panns_core.hub.catalogue import Catalogue, load_catalogue
from panns_core.hub.download import DownloadProgress, download_file, part_path

FILE = "Cnn6_mAP=0.343.pth"
# Timeouts a busy machine never reaches (10 s without a byte): the request counts the
# tests assert do not depend on the load. Tests that need a timeout to fire use STALL
# against a server that stalls for a minute: the server counts a stall the client waited
# out, so a test proves the timeout fired without timing anything.
FAST = {"timeout": (10.0, 10.0), "backoff": 0.01, "retries": 3}
STALL = {**FAST, "timeout": (10.0, 1.0)}
FOREVER = 60.0  # a stall the client must not wait out (released when the test ends)


def _resumed_in_order(server, first_resume: int) -> list[int]:
    """The request ranges: the first from 0, the second from ``first_resume``, and any
    later one (the busy machine timed out once more) further on; their starts."""
    ranges = server.ranges()
    assert ranges[0] is None and ranges[1] == f"bytes={first_resume}-"
    starts = [int(r.removeprefix("bytes=").rstrip("-")) for r in ranges[1:]]
    assert starts == sorted(set(starts))
    return starts


@pytest.fixture(scope="session")
def ckpt(reference_dir: Path) -> bytes:
    return make_checkpoint_bytes(reference_dir / "state_dict_keys.json", "Cnn6")


@pytest.fixture
def server(ckpt: bytes):
    with ModelServer({FILE: ckpt}) as srv:
        yield srv


def _url(server: ModelServer) -> str:
    return f"{server.base_url}/Cnn6_mAP%3D0.343.pth?download=1"


def _get(server, dest, ckpt, **kw):
    args = {"size": len(ckpt), "sha256": hashlib.sha256(ckpt).hexdigest(), **FAST, **kw}
    return download_file(_url(server), dest, **args)


def test_plain_download_verifies_sha256_and_reports_progress(server, ckpt, tmp_path):
    seen: list[DownloadProgress] = []
    result = _get(server, tmp_path / FILE, ckpt, progress=seen.append)
    assert (tmp_path / FILE).read_bytes() == ckpt
    assert result.hash_name == "sha256"
    assert result.hash_value == hashlib.sha256(ckpt).hexdigest()
    assert result.size == len(ckpt) and not result.already_present
    assert not part_path(tmp_path / FILE).exists()
    assert server.ranges() == [None]
    done = [p.bytes_done for p in seen]
    assert done == sorted(done) and done[-1] == len(ckpt)
    assert all(p.total == len(ckpt) for p in seen)
    assert seen[-1].rate > 0 and seen[-1].eta == 0
    assert seen[-1].fraction == 1.0


def test_md5_is_checked_when_no_sha256_is_known(server, ckpt, tmp_path):
    result = download_file(_url(server), tmp_path / FILE, size=len(ckpt),
                           md5=hashlib.md5(ckpt).hexdigest(), **FAST)
    assert result.hash_name == "md5"
    assert result.hash_value == hashlib.md5(ckpt).hexdigest()


def test_dropped_connection_resumes_with_range_and_verifies(server, ckpt, tmp_path):
    server.script = ["drop"]
    result = _get(server, tmp_path / FILE, ckpt)
    half = len(ckpt) // 2
    assert server.ranges() == [None, f"bytes={half}-"]
    assert result.resumed_from == half
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_server_ignoring_range_restarts_from_zero(server, ckpt, tmp_path):
    server.script = ["drop", "ignore_range"]
    result = _get(server, tmp_path / FILE, ckpt)
    assert server.ranges()[1] == f"bytes={len(ckpt) // 2}-"
    assert result.resumed_from == 0
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_partial_file_from_an_earlier_run_is_resumed(server, ckpt, tmp_path):
    part = part_path(tmp_path / FILE)
    part.write_bytes(ckpt[:1000])
    _get(server, tmp_path / FILE, ckpt)
    assert server.ranges() == ["bytes=1000-"]
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_complete_partial_file_gets_416_and_is_verified(server, ckpt, tmp_path):
    part_path(tmp_path / FILE).write_bytes(ckpt)
    result = download_file(_url(server), tmp_path / FILE, md5=hashlib.md5(ckpt).hexdigest(),
                           **FAST)  # size unknown: the client has to ask
    assert server.ranges() == [f"bytes={len(ckpt)}-"]
    assert result.size == len(ckpt)
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_404_fails_at_once_and_keeps_nothing(server, ckpt, tmp_path):
    server.script = ["404"]
    with pytest.raises(DownloadError, match="HTTP 404"):
        _get(server, tmp_path / FILE, ckpt)
    assert len(server.log) == 1
    assert list(tmp_path.iterdir()) == []


def test_500_is_retried_with_backoff_then_succeeds(server, ckpt, tmp_path):
    server.script = ["500", "500"]
    t0 = time.monotonic()
    result = _get(server, tmp_path / FILE, ckpt, backoff=0.1)
    elapsed = time.monotonic() - t0
    assert len(server.log) == 3 and result.attempts == 3
    assert elapsed >= 0.1 + 0.2  # backoff doubled between attempts
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_persistent_500_gives_up_after_the_retries(server, ckpt, tmp_path):
    server.script = ["500"] * 10
    with pytest.raises(DownloadError, match=r"failed after 3 attempts: HTTP 500"):
        _get(server, tmp_path / FILE, ckpt, retries=2)
    assert len(server.log) == 3
    assert not (tmp_path / FILE).exists()


def test_stall_mid_file_times_out_and_resumes(server, ckpt, tmp_path):
    server.script = ["stall"]
    server.stall_seconds = FOREVER  # only the client's read timeout ends the first request
    result = _get(server, tmp_path / FILE, ckpt, **STALL)
    quarter = len(ckpt) // 4
    starts = _resumed_in_order(server, quarter)
    assert result.resumed_from == starts[-1]
    assert (tmp_path / FILE).read_bytes() == ckpt
    assert server.stalls_outlived == 0  # the client gave up on the stall, not the server


def test_server_that_never_answers_times_out(server, ckpt, tmp_path):
    server.script = ["stall_headers"] * 10
    server.stall_seconds = FOREVER  # the server never answers: the timeout has to fire
    with pytest.raises(DownloadError, match="timed out"):
        _get(server, tmp_path / FILE, ckpt, **{**STALL, "retries": 1})
    assert len(server.log) == 2  # both attempts timed out, whatever the load
    assert server.stalls_outlived == 0
    assert not (tmp_path / FILE).exists()


def test_wrong_bytes_are_deleted_and_reported(server, ckpt, tmp_path):
    server.script = ["wrong"]
    good = hashlib.sha256(ckpt).hexdigest()
    bad = bytearray(ckpt)
    bad[100] ^= 0xFF
    with pytest.raises(DownloadError) as info:
        _get(server, tmp_path / FILE, ckpt)
    message = str(info.value)
    assert f"expected {good}" in message
    assert f"got {hashlib.sha256(bytes(bad)).hexdigest()}" in message
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_announced_by_the_server_stops_early(server, ckpt, tmp_path):
    with pytest.raises(DownloadError, match=f"offers {len(ckpt)} bytes.*expected size is 1234"):
        download_file(_url(server), tmp_path / FILE, size=1234, md5="0" * 32, **FAST)
    assert list(tmp_path.iterdir()) == []


def test_cancel_keeps_the_partial_file_and_the_next_call_resumes(server, ckpt, tmp_path):
    cancel = threading.Event()

    def stop_after_first_chunk(p: DownloadProgress) -> None:
        if p.bytes_done > 0:
            cancel.set()

    with pytest.raises(Cancelled):
        _get(server, tmp_path / FILE, ckpt, progress=stop_after_first_chunk, cancel=cancel)
    kept = part_path(tmp_path / FILE).stat().st_size
    assert 0 < kept < len(ckpt)
    assert not (tmp_path / FILE).exists()
    result = _get(server, tmp_path / FILE, ckpt)
    assert server.ranges()[-1] == f"bytes={kept}-"
    assert result.resumed_from == kept
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_cancel_during_backoff(server, ckpt, tmp_path):
    server.script = ["500"] * 10
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        _get(server, tmp_path / FILE, ckpt, backoff=3600.0, cancel=cancel)
    # liveness, not speed: the hour's wait was cut short by the cancel
    assert time.monotonic() - t0 < 600


def test_verified_file_is_never_overwritten(server, ckpt, tmp_path):
    dest = tmp_path / FILE
    _get(server, dest, ckpt)
    os.utime(dest, (1_000_000, 1_000_000))
    result = _get(server, dest, ckpt)
    assert result.already_present
    assert len(server.log) == 1  # no second request
    assert dest.stat().st_mtime == 1_000_000


def test_a_different_file_in_the_way_is_left_alone(server, ckpt, tmp_path):
    dest = tmp_path / FILE
    dest.write_bytes(b"somebody else's file")
    with pytest.raises(DownloadError, match="left alone"):
        _get(server, dest, ckpt)
    assert dest.read_bytes() == b"somebody else's file"
    assert server.log == []


def test_proxy_from_the_environment_is_used(server, ckpt, tmp_path, monkeypatch):
    # The loopback server doubles as an HTTP proxy: it sees the absolute URL.
    for var in ("no_proxy", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
    url = "http://models.example.invalid/files/Cnn6_mAP%3D0.343.pth?download=1"
    download_file(url, tmp_path / FILE, size=len(ckpt), sha256=hashlib.sha256(ckpt).hexdigest(),
                  **FAST)
    assert server.log[0][1].startswith("http://models.example.invalid/files/")
    assert (tmp_path / FILE).read_bytes() == ckpt


def test_refuses_to_download_without_a_hash(tmp_path):
    with pytest.raises(DownloadError, match="no sha256 or md5"):
        download_file("http://127.0.0.1:9/x", tmp_path / "x")


# -- the catalogue ---------------------------------------------------------------------


def test_shipped_catalogue_urls_and_names(monkeypatch):
    monkeypatch.delenv("PANNS_ANNOTATOR_MODEL_URL_BASE", raising=False)
    monkeypatch.delenv("PANNS_ANNOTATOR_CATALOGUE", raising=False)
    catalogue = load_catalogue()
    assert isinstance(catalogue, Catalogue) and len(catalogue) == 8
    default = catalogue.default()
    assert default.name == "Cnn14_DecisionLevelMax" and default.framewise
    assert default.download_url() == (
        "https://zenodo.org/records/3987831/files/"
        "Cnn14_DecisionLevelMax_mAP%3D0.385.pth?download=1"
    )
    for spelling in ("cnn14_decisionlevelmax", "CNN14-DecisionLevelMax",
                     "Cnn14_DecisionLevelMax_mAP=0.385.pth", "cnn14_decisionlevelmax.audioset_32k"):
        assert catalogue.get(spelling) is default
    assert catalogue.get("cnn14_16k").sample_rate == 16000
    assert catalogue.get("Cnn14_16k.audioset_16k").name == "Cnn14_16k"
    assert catalogue.get("cnn14").name == "Cnn14"
    assert catalogue.get("Cnn6").hash_name == "md5"
    assert default.hash_name == "sha256"
    with pytest.raises(ModelNotFoundError, match="not in the model catalogue"):
        catalogue.get("resnet50")


def test_url_base_from_parameter_and_environment(monkeypatch):
    entry = load_catalogue().get("Cnn10")
    monkeypatch.setenv("PANNS_ANNOTATOR_MODEL_URL_BASE", "http://mirror.test/panns/")
    assert entry.download_url() == "http://mirror.test/panns/Cnn10_mAP%3D0.380.pth?download=1"
    assert entry.download_url("http://other.test") == (
        "http://other.test/Cnn10_mAP%3D0.380.pth?download=1"
    )


@pytest.mark.skipif(os.name == "nt", reason="fcntl lock held by the test itself")
def test_a_second_concurrent_download_of_the_same_file_is_refused(server, ckpt, tmp_path):
    import fcntl

    dest = tmp_path / FILE
    with open(tmp_path / (FILE + ".lock"), "a+b") as other:  # another process's lock
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(DownloadError, match="already being downloaded"):
            _get(server, dest, ckpt)
        assert server.log == []
        fcntl.flock(other.fileno(), fcntl.LOCK_UN)
    _get(server, dest, ckpt)
    assert dest.read_bytes() == ckpt
    assert sorted(p.name for p in tmp_path.iterdir()) == [FILE]
