"""panns_core.audio over files the tests write in every format, bit depth, rate and layout."""

from __future__ import annotations

import hashlib
import math
import struct
import tracemalloc
import warnings

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from panns_core.audio import (
    AudioBlock,
    AudioError,
    AudioWarning,
    audio_info,
    file_sha256,
    iter_blocks,
    load_audio,
    quick_hash,
    read_range,
    resample,
)

RATES = [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000, 176400, 192000]


def tones(n: int, sr: int, channels: int, amp: float = 0.4) -> np.ndarray:
    """(n, channels) float64: a different sine per channel, all well below Nyquist.

    Channel 5 is 70 Hz: in a 6-channel Vorbis stream it is the LFE, which the encoder
    low-passes."""
    t = np.arange(n) / sr
    freqs = [70 if c == 5 else 300 + 170 * c for c in range(channels)]
    cols = [amp * np.sin(2 * np.pi * f * t + c) for c, f in enumerate(freqs)]
    return np.stack(cols, axis=1)


def noisy(n: int, sr: int, channels: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return tones(n, sr, channels, 0.3) + 0.1 * rng.standard_normal((n, channels))


def write_exact(path, x: np.ndarray, sr: int, fmt: str, subtype: str) -> np.ndarray:
    """Write x as fmt/subtype; return the float32 samples libsndfile must read back."""
    if subtype == "PCM_16":
        q = np.round(x * 32767).astype(np.int16)
        data, expected = q, q / 32768
    elif subtype == "PCM_24":
        q = np.round(x * (2**23 - 1)).astype(np.int32)
        data, expected = q << 8, q / 2**23
    elif subtype == "PCM_32":
        q = np.round(x * (2**31 - 1)).astype(np.int32)
        data, expected = q, q / 2**31
    elif subtype in ("PCM_U8", "PCM_S8"):
        q = np.round(x * 127).astype(np.int16)
        data, expected = q << 8, q / 128
    elif subtype == "FLOAT":
        data = expected = x.astype(np.float32)
    elif subtype == "DOUBLE":
        data, expected = x, x
    else:
        raise AssertionError(subtype)
    sf.write(path, data, sr, format=fmt, subtype=subtype)
    return np.asarray(expected, dtype=np.float32)


def check_channels(path, expected: np.ndarray, sr: int, fmt: str, subtype: str) -> None:
    info = audio_info(path)
    assert (info.sample_rate, info.frames, info.channels) == (sr, *expected.shape)
    assert (info.format, info.subtype) == (fmt, subtype)
    assert info.duration == pytest.approx(expected.shape[0] / sr)
    for c in range(expected.shape[1]):
        x, rate = load_audio(path, channel=c)
        assert rate == sr and x.dtype == np.float32
        np.testing.assert_allclose(x, expected[:, c], rtol=0, atol=1e-7)
    mixed, _ = load_audio(path)
    np.testing.assert_allclose(mixed, expected.mean(axis=1), rtol=0, atol=1e-6)


# --- every lossless format x subtype x channel layout ------------------------------------
LOSSLESS = [("WAV", s, "wav") for s in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT",
                                        "DOUBLE")]
LOSSLESS += [("FLAC", s, "flac") for s in ("PCM_S8", "PCM_16", "PCM_24")]


@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize(("fmt", "subtype", "ext"), LOSSLESS)
def test_lossless_formats_read_back_exactly(tmp_path, fmt, subtype, ext, channels):
    sr = 44100
    path = tmp_path / f"x.{ext}"
    expected = write_exact(path, noisy(sr // 5, sr, channels) * 0.9, sr, fmt, subtype)
    check_channels(path, expected, sr, fmt, subtype)


@pytest.mark.parametrize("sr", RATES)
@pytest.mark.parametrize(("fmt", "subtype", "ext"), [("WAV", "PCM_16", "wav"),
                                                     ("FLAC", "PCM_24", "flac")])
def test_every_rate_reads_back_exactly(tmp_path, sr, fmt, subtype, ext):
    channels = 1 + RATES.index(sr) % 3 * 2 + (RATES.index(sr) % 3 == 2)  # 1, 3, 6
    path = tmp_path / f"x.{ext}"
    expected = write_exact(path, tones(sr // 10, sr, channels), sr, fmt, subtype)
    check_channels(path, expected, sr, fmt, subtype)


# --- lossy formats: same signal, judged by SNR --------------------------------------------
def snr_db(ref: np.ndarray, x: np.ndarray) -> float:
    n = min(len(ref), len(x))
    ref, x = ref[:n], x[:n]
    return 10 * math.log10(np.sum(ref**2) / max(np.sum((ref - x) ** 2), 1e-20))


LOSSY = [("OGG", "VORBIS", "ogg", sr, ch) for sr in (8000, 44100, 192000) for ch in (1, 2, 6)]
LOSSY += [("MP3", "MPEG_LAYER_III", "mp3", sr, ch) for sr in (8000, 22050, 44100, 48000)
          for ch in (1, 2)]  # MP3: at most 2 channels, rates up to 48 kHz


@pytest.mark.parametrize(("fmt", "subtype", "ext", "sr", "channels"), LOSSY)
def test_lossy_formats_match_what_was_encoded(tmp_path, fmt, subtype, ext, sr, channels):
    x = tones(sr // 2, sr, channels)
    path = tmp_path / f"x.{ext}"
    sf.write(path, x, sr, format=fmt, subtype=subtype)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.format, info.subtype) == (
        sr, channels, fmt, subtype)
    for c in range(channels):
        y, rate = load_audio(path, channel=c)
        assert rate == sr
        assert abs(len(y) - len(x)) <= 1152
        assert snr_db(x[:, c], y) > 10  # the wrong channel scores about -3 dB
    mixed, _ = load_audio(path)
    assert snr_db(x.mean(axis=1), mixed) > 15


def test_mp3_blocks_are_not_corrupted_by_seeks(tmp_path):
    """soundfile's read() seeks around every call, which breaks VBR MP3 decoding in
    libsndfile 1.2.2; our reader must give the same samples in any block size."""
    sr = 44100
    t = np.arange(6 * sr) / sr
    x = 0.3 * np.sin(2 * np.pi * 1000 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    path = tmp_path / "vbr.mp3"
    sf.write(path, x, sr, format="MP3")
    whole, _ = sf.read(path, dtype="float32")  # one read, no seeks: the correct decode
    y, _ = load_audio(path)
    np.testing.assert_array_equal(y, whole)
    blocks = list(iter_blocks(path, None, 0.5, 0.5, read_frames=1000))
    np.testing.assert_array_equal(np.concatenate([b.samples for b in blocks]), whole)
    part = read_range(path, 2.5, 4.0)
    np.testing.assert_array_equal(part, whole[round(2.5 * sr): round(4.0 * sr)])


# --- resampling ---------------------------------------------------------------------------
def peak_frequency(x: np.ndarray, sr: int) -> float:
    w = x * np.hanning(len(x))
    spec = np.abs(np.fft.rfft(w, 8 * len(w)))
    k = int(np.argmax(spec))
    a, b, c = np.log(spec[k - 1: k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / (8 * len(w))


@pytest.mark.parametrize(("sr_in", "sr_out"), [(8000, 32000), (44100, 32000), (192000, 16000),
                                               (22050, 32000), (48000, 8000), (32000, 32000),
                                               (96000, 44100), (11025, 16000)])
def test_resampling_keeps_frequency_level_and_length(tmp_path, sr_in, sr_out):
    n = sr_in // 2 + 7
    x = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(n) / sr_in)
    path = tmp_path / "sine.wav"
    sf.write(path, x.astype(np.float32), sr_in, subtype="FLOAT")
    y, rate = load_audio(path, sr_out)
    assert rate == sr_out and y.dtype == np.float32
    assert len(y) == round(n * sr_out / sr_in)
    mid = y[len(y) // 4: 3 * len(y) // 4]
    assert peak_frequency(mid, sr_out) == pytest.approx(1000, abs=0.5)
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.5 / math.sqrt(2), rel=0.01)
    np.testing.assert_array_equal(y, resample(x.astype(np.float32), sr_in, sr_out))


def test_resample_arrays():
    x = np.random.default_rng(1).standard_normal((4410, 2)).astype(np.float32)
    y = resample(x, 44100, 16000)
    assert y.shape == (1600, 2) and y.dtype == np.float32
    # the same rate: the samples unchanged, as float32, in a new array (the caller may
    # write into it without touching the input)
    column = x[:, 0].astype(np.float64)
    same = resample(column, 16000, 16000)
    assert same.dtype == np.float32 and same.shape == column.shape
    np.testing.assert_array_equal(same, column.astype(np.float32))
    mono = np.ascontiguousarray(x[:, 0])
    same = resample(mono, 16000, 16000)
    assert not np.shares_memory(same, mono)
    same[:] = 0.0
    assert np.any(mono != 0.0)
    with pytest.raises(ValueError):
        resample(x, 0, 16000)
    with pytest.raises(ValueError):
        resample(x, 44100, 1.5)


# --- ranges and blocks agree with the whole file ------------------------------------------
STREAM_RATES = [8000, 22050, 44100, 48000]
OUT_RATES = [8000, 16000, 32000, 44100, 48000]


@pytest.fixture(scope="module")
def stream_files(tmp_path_factory):
    """3-s stereo FLACs per input rate, and a cache of whole-file loads per output rate."""
    root = tmp_path_factory.mktemp("stream")
    files = {}
    for i, sr in enumerate(STREAM_RATES):
        path = root / f"s{sr}.flac"
        sf.write(path, noisy(3 * sr + 101 * i, sr, 2, seed=i) * 0.8, sr, subtype="PCM_24")
        files[sr] = path
    cache: dict = {}

    def whole(sr_in: int, sr_out: int) -> np.ndarray:
        if (sr_in, sr_out) not in cache:
            cache[sr_in, sr_out] = load_audio(files[sr_in], sr_out)[0]
        return cache[sr_in, sr_out]

    return files, whole


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sr_in=st.sampled_from(STREAM_RATES), sr_out=st.sampled_from(OUT_RATES),
       block_seconds=st.floats(0.05, 3.5), hop_fraction=st.floats(0.05, 1.0),
       start=st.one_of(st.just(0.0), st.floats(0.0, 3.2)),
       read_frames=st.integers(64, 70000))
def test_blocks_are_slices_of_the_whole_file(stream_files, sr_in, sr_out, block_seconds,
                                             hop_fraction, start, read_frames):
    files, whole = stream_files
    ref = whole(sr_in, sr_out)
    hop_seconds = max(block_seconds * hop_fraction, 1 / sr_out)
    blocks = list(iter_blocks(files[sr_in], sr_out, block_seconds, hop_seconds, start=start,
                              read_frames=read_frames))
    block, hop, k0 = (round(block_seconds * sr_out), round(hop_seconds * sr_out),
                      round(start * sr_out))
    if k0 >= len(ref):
        assert blocks == []
        return
    assert blocks[-1].is_last and not any(b.is_last for b in blocks[:-1])
    assert blocks[-1].offset + len(blocks[-1].samples) == len(ref)  # runs to the true end
    assert len(blocks) == 1 + max(0, math.ceil((len(ref) - k0 - block) / hop))
    for i, b in enumerate(blocks):
        assert isinstance(b, AudioBlock) and b.index == i and b.sample_rate == sr_out
        assert b.offset == k0 + i * hop and b.start == pytest.approx(b.offset / sr_out)
        assert b.samples.dtype == np.float32
        assert len(b.samples) == block or b.is_last
        np.testing.assert_allclose(b.samples, ref[b.offset: b.offset + len(b.samples)],
                                   rtol=0, atol=1e-5)
    joined = np.concatenate([b.samples[:hop] for b in blocks[:-1]] + [blocks[-1].samples])
    np.testing.assert_allclose(joined, ref[k0:], rtol=0, atol=1e-5)


@pytest.mark.parametrize("sr_in", STREAM_RATES)
@pytest.mark.parametrize("sr_out", [None, 16000, 32000])
@pytest.mark.parametrize(("start", "stop"), [(0.0, 1.0), (0.7311, 2.05), (1.5, None),
                                             (2.9, 10.0), (5.0, None)])
def test_ranges_are_slices_of_the_whole_file(stream_files, sr_in, sr_out, start, stop):
    files, whole = stream_files
    rate = sr_out or sr_in
    ref = whole(sr_in, rate)
    part = read_range(files[sr_in], start, stop, rate)
    k0 = round(start * rate)
    k1 = len(ref) if stop is None else min(round(stop * rate), len(ref))
    assert len(part) == max(0, k1 - k0)
    np.testing.assert_allclose(part, ref[k0:k1], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("fmt", "ext"), [("OGG", "ogg"), ("MP3", "mp3")])
def test_ranges_of_lossy_files(tmp_path, fmt, ext):
    path = tmp_path / f"x.{ext}"
    sf.write(path, noisy(2 * 44100, 44100, 2), 44100, format=fmt)
    ref, _ = load_audio(path, 32000)
    part, _ = load_audio(path, 32000, start=0.8, stop=1.3)
    np.testing.assert_allclose(part, ref[round(0.8 * 32000): round(1.3 * 32000)], atol=1e-5)


def test_bad_ranges_and_block_sizes(stream_files):
    files, _ = stream_files
    with pytest.raises(ValueError):
        load_audio(files[8000], start=-1.0)
    with pytest.raises(ValueError):
        load_audio(files[8000], start=2.0, stop=1.0)
    for block, hop in [(1.0, 0.0), (1.0, 2.0), (0.0, 0.0)]:
        with pytest.raises(ValueError):
            iter_blocks(files[8000], 16000, block, hop)


def test_blocks_stream_in_bounded_memory(tmp_path):
    """Ten minutes at 16 kHz is 38 MB as float32; blocks must never hold more than a few."""
    sr, minutes = 8000, 10
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", sr, 1, subtype="PCM_16") as f:
        for i in range(minutes):
            f.write(noisy(60 * sr, sr, 1, seed=i) * 0.5)
    tracemalloc.start()
    try:
        last = None
        for b in iter_blocks(path, 16000, 10.0, 8.0):
            last = b
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last is not None and last.is_last and last.end == pytest.approx(60 * minutes)
    whole_bytes = 60 * minutes * 16000 * 4  # 38 MB; blocks of 10 s are 0.64 MB each
    assert peak < whole_bytes / 5, f"peak {peak / 1e6:.1f} MB"


# --- channels -----------------------------------------------------------------------------
def test_channel_must_exist(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(path, tones(800, 8000, 2), 8000)
    for bad in (2, 7, -1):
        with pytest.raises(AudioError, match=r"2 channel.*Choose 0 to 1"):
            load_audio(path, channel=bad)
    with pytest.raises(AudioError, match=r"st\.wav"):
        iter_blocks(path, 8000, 0.1, 0.1, channel=2)


# --- bad input ----------------------------------------------------------------------------
def riff_wav(tag: int, data: bytes, declared: int | None = None, channels: int = 1,
             sr: int = 8000, bits: int = 16) -> bytes:
    fmt = struct.pack("<HHIIHH", tag, channels, sr, sr * channels * bits // 8,
                      channels * bits // 8, bits)
    size = len(data) if declared is None else declared
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def all_readers(path):
    """Every public entry point must refuse bad input in the same clear way."""
    return [lambda: audio_info(path), lambda: load_audio(path, 16000),
            lambda: list(iter_blocks(path, 16000, 1.0, 0.5))]


def assert_refused(path, pattern: str) -> None:
    for read in all_readers(path):
        with pytest.raises(AudioError, match=pattern) as info:
            read()
        assert path.name in str(info.value)


def test_missing_file(tmp_path):
    assert_refused(tmp_path / "nowhere.wav", "not found")


def test_folder(tmp_path):
    (tmp_path / "dir.wav").mkdir()
    assert_refused(tmp_path / "dir.wav", "folder")


def test_zero_byte_file(tmp_path):
    (tmp_path / "zero.wav").write_bytes(b"")
    assert_refused(tmp_path / "zero.wav", r"empty \(0 bytes\)")


def test_wav_without_samples(tmp_path):
    (tmp_path / "nosamples.wav").write_bytes(riff_wav(1, b""))
    assert_refused(tmp_path / "nosamples.wav", "no audio samples")


def test_text_renamed_wav(tmp_path):
    (tmp_path / "notes.wav").write_text("onset\toffset\tlabel\n0.5\t1.0\tdog\n" * 20)
    assert_refused(tmp_path / "notes.wav", "not an audio file.*convert it to WAV or FLAC")


def test_random_bytes_flac(tmp_path):
    (tmp_path / "noise.flac").write_bytes(np.random.default_rng(0).bytes(5000))
    assert_refused(tmp_path / "noise.flac", "not an audio file")


def test_wav_with_unsupported_codec(tmp_path):
    (tmp_path / "wma.wav").write_bytes(riff_wav(0x0161, bytes(4000)))
    assert_refused(tmp_path / "wma.wav", r"WMA.*0x0161.*cannot decode.*Convert it to WAV")


def test_mp4_audio_is_an_unsupported_codec(tmp_path):
    # The start of an M4A file: an ftyp box naming the brand, then an mdat box.
    head = struct.pack(">I", 24) + b"ftypM4A " + struct.pack(">I", 0) + b"M4A isom"
    (tmp_path / "song.m4a").write_bytes(head + struct.pack(">I", 1008) + b"mdat" + bytes(1000))
    assert_refused(tmp_path / "song.m4a", r"MP4/M4A.*cannot decode.*Convert")


def test_truncated_wav(tmp_path):
    path = tmp_path / "cut.wav"
    sf.write(path, tones(8000, 8000, 2), 8000, subtype="PCM_24")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert_refused(path, r"truncated.*declares 48000 bytes")


@pytest.mark.parametrize("ext", ["flac", "ogg"])
def test_truncated_flac_and_ogg(tmp_path, ext):
    path = tmp_path / f"cut.{ext}"
    sf.write(path, noisy(16000, 16000, 2), 16000)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 6 // 10])
    for read in all_readers(path)[1:]:
        with pytest.raises(AudioError, match=r"truncated|no audio samples") as info:
            read()
        assert "cut." in str(info.value)


def test_corrupt_flac_middle(tmp_path):
    path = tmp_path / "rot.flac"
    sf.write(path, noisy(3 * 16000, 16000, 1), 16000)
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    raw[mid: mid + 3000] = np.random.default_rng(3).bytes(3000)
    path.write_bytes(bytes(raw))
    with pytest.raises(AudioError, match=r"rot\.flac.*(damaged|truncated)"):
        load_audio(path)


def test_truncated_mp3_loads_with_a_warning(tmp_path):
    path = tmp_path / "cut.mp3"
    sf.write(path, tones(3 * 16000, 16000, 1), 16000, format="MP3")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.warns(AudioWarning, match="cut.mp3.*truncated"):
        y, _ = load_audio(path)
    assert 0.8 < len(y) / 16000 < 2.0


def test_nan_and_inf_are_zeroed_with_a_warning(tmp_path):
    x = tones(4000, 8000, 2).astype(np.float32)
    x[400, 0], x[2000, 1], x[3999, 0] = np.nan, np.inf, -np.inf
    path = tmp_path / "nan.wav"
    sf.write(path, x, 8000, subtype="FLOAT")
    with pytest.warns(AudioWarning, match=r"nan.wav.*NaN or infinite.*0\.050 s"):
        left, _ = load_audio(path, channel=0)
    assert np.isfinite(left).all() and left[400] == 0 and left[3999] == 0
    np.testing.assert_array_equal(np.delete(left, [400, 3999]), np.delete(x[:, 0], [400, 3999]))
    with pytest.warns(AudioWarning):
        mixed, _ = load_audio(path, 16000)
    assert np.isfinite(mixed).all()
    with pytest.warns(AudioWarning):
        blocks = list(iter_blocks(path, 8000, 0.1, 0.1))
    assert all(np.isfinite(b.samples).all() for b in blocks)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(path, start=0.3, stop=0.4)  # a clean range does not warn


# --- hashes -------------------------------------------------------------------------------
def test_hashes(tmp_path):
    data = np.random.default_rng(5).bytes(3 * (1 << 20) + 17)
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    a.write_bytes(data)
    b.write_bytes(data)
    assert file_sha256(a) == hashlib.sha256(data).hexdigest() == file_sha256(b)
    assert quick_hash(a) == quick_hash(b) and quick_hash(a) != file_sha256(a)
    b.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # last byte differs
    assert quick_hash(a) != quick_hash(b) and file_sha256(a) != file_sha256(b)
    small = tmp_path / "small.bin"
    small.write_bytes(b"abc")
    assert file_sha256(small) == hashlib.sha256(b"abc").hexdigest()
    assert quick_hash(small) != quick_hash(a)
    for fn in (file_sha256, quick_hash):
        with pytest.raises(AudioError, match="not found"):
            fn(tmp_path / "missing.wav")
