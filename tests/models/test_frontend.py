"""Our front end (panns_core.models.frontend) against torchlibrosa and librosa.

The models build their STFT, mel filter bank and SpecAugment from our modules so that
starting a detection does not import librosa; these tests prove the modules compute
what torchlibrosa's do (tests may import librosa).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from panns_core.models import config as model_config
from panns_core.models import frontend
from panns_core.models.config import FeatureConfig

librosa = pytest.importorskip("librosa")
tl_stft = pytest.importorskip("torchlibrosa.stft")
tl_augmentation = pytest.importorskip("torchlibrosa.augmentation")

#: every feature config the package defines (32 kHz, 16 kHz, 8 kHz if present)
FEATURE_CONFIGS = {
    name: value
    for name, value in vars(model_config).items()
    if name.startswith("FEATURES_") and isinstance(value, FeatureConfig)
}
WEIGHT_TOLERANCE = 1e-6
LOGMEL_TOLERANCE_DB = 1e-4


def _ours(fc: FeatureConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    spectrogram = frontend.Spectrogram(
        n_fft=fc.window_size, hop_length=fc.hop_size, win_length=fc.window_size,
        center=True, pad_mode="reflect",
    )  # fmt: skip
    logmel = frontend.LogmelFilterBank(
        sr=fc.sample_rate, n_fft=fc.window_size, n_mels=fc.mel_bins, fmin=fc.fmin,
        fmax=fc.fmax, ref=1.0, amin=1e-10, top_db=None,
    )  # fmt: skip
    return spectrogram.eval(), logmel.eval()


def _torchlibrosa(fc: FeatureConfig) -> tuple[torch.nn.Module, torch.nn.Module]:
    spectrogram = tl_stft.Spectrogram(
        n_fft=fc.window_size, hop_length=fc.hop_size, win_length=fc.window_size,
        window="hann", center=True, pad_mode="reflect", freeze_parameters=True,
    )  # fmt: skip
    logmel = tl_stft.LogmelFilterBank(
        sr=fc.sample_rate, n_fft=fc.window_size, n_mels=fc.mel_bins, fmin=fc.fmin,
        fmax=fc.fmax, ref=1.0, amin=1e-10, top_db=None, freeze_parameters=True,
    )  # fmt: skip
    return spectrogram.eval(), logmel.eval()


def _signal(
    fc: FeatureConfig, seconds: float = 3.0, seed: int = 0, noise: float = 1e-3
) -> torch.Tensor:
    """Two items: noise plus a 1 kHz tone, and a chirp over a ``noise`` floor (rms) that
    starts with a second of digital silence."""
    rng = np.random.default_rng(seed)
    samples = int(seconds * fc.sample_rate)
    t = np.arange(samples) / fc.sample_rate
    tone = 0.3 * np.sin(2 * np.pi * 1000.0 * t)
    chirp = 0.2 * np.sin(2 * np.pi * (100.0 + 0.4 * fc.sample_rate / 2 * t / seconds) * t)
    floor = noise * rng.standard_normal(samples) if noise else 1e-4 * tone
    x = np.stack([tone + 0.05 * rng.standard_normal(samples), chirp + floor])
    x[1, : samples // 3] = 0.0
    return torch.from_numpy(x.astype(np.float32))


def _float64_logmel(fc: FeatureConfig, x: torch.Tensor) -> np.ndarray:
    """(batch, frames, mels) log-mel in float64 with numpy's FFT: the truth."""
    half = fc.window_size // 2
    padded = np.pad(x.double().numpy(), ((0, 0), (half, half)), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, fc.window_size, axis=1)
    frames = frames[:, :: fc.hop_size]
    power = np.abs(np.fft.rfft(frames * frontend.hann_window(fc.window_size), axis=-1)) ** 2
    mel = frontend.mel_filterbank(fc.sample_rate, fc.window_size, fc.mel_bins, fc.fmin, fc.fmax)
    return 10.0 * np.log10(np.maximum(power @ mel.T.astype(np.float64), 1e-10))


def test_the_feature_configs_are_found() -> None:
    assert {"FEATURES_32K", "FEATURES_16K"} <= set(FEATURE_CONFIGS)


@pytest.mark.parametrize("name", sorted(FEATURE_CONFIGS))
def test_weights_equal_torchlibrosa(name: str) -> None:
    fc = FEATURE_CONFIGS[name]
    ours, theirs = _ours(fc), _torchlibrosa(fc)
    ours_state = {**ours[0].state_dict(), **ours[1].state_dict()}
    theirs_state = {**theirs[0].state_dict(), **theirs[1].state_dict()}
    assert list(ours_state) == list(theirs_state)
    assert list(ours_state) == ["stft.conv_real.weight", "stft.conv_imag.weight", "melW"]
    for key, value in theirs_state.items():
        assert ours_state[key].shape == value.shape, key
        assert ours_state[key].dtype == value.dtype, key
        diff = float((ours_state[key] - value).abs().max())
        assert diff <= WEIGHT_TOLERANCE, (key, diff)
    assert not any(p.requires_grad for m in ours for p in m.parameters())  # frozen


@pytest.mark.parametrize("name", sorted(FEATURE_CONFIGS))
def test_logmel_equals_torchlibrosa(name: str) -> None:
    fc = FEATURE_CONFIGS[name]
    (spectrogram, logmel), (their_spectrogram, their_logmel) = _ours(fc), _torchlibrosa(fc)
    x = _signal(fc)
    with torch.inference_mode():
        ours = logmel(spectrogram(x))
        theirs = their_logmel(their_spectrogram(x))
    assert ours.shape == theirs.shape == (2, 1, fc.num_frames(x.shape[-1]), fc.mel_bins)
    diff = float((ours - theirs).abs().max())
    assert diff <= LOGMEL_TOLERANCE_DB, diff
    assert float(ours[1, 0, 5].max()) == pytest.approx(-100.0)  # silence: 10 log10(amin)


@pytest.mark.parametrize("name", sorted(FEATURE_CONFIGS))
def test_logmel_below_float32_resolution_is_no_worse_than_torchlibrosa(name: str) -> None:
    """Leakage ~115 dB below a frame's peak is float32 rounding noise of the convolution
    for both front ends (our kernels differ from torchlibrosa's by float32 ulps, ours
    being the more exact): there they differ by a few 1e-4 dB, and ours is no farther
    from a float64 log-mel than torchlibrosa's."""
    fc = FEATURE_CONFIGS[name]
    (spectrogram, logmel), (their_spectrogram, their_logmel) = _ours(fc), _torchlibrosa(fc)
    x = _signal(fc, noise=0.0)  # the chirp over a -80 dB tone, nothing else
    with torch.inference_mode():
        ours = logmel(spectrogram(x))[:, 0].numpy()
        theirs = their_logmel(their_spectrogram(x))[:, 0].numpy()
    truth = _float64_logmel(fc, x)
    assert ours.shape == truth.shape
    ours_error, their_error = np.abs(ours - truth), np.abs(theirs - truth)
    assert float(ours_error.max()) <= float(their_error.max()) + LOGMEL_TOLERANCE_DB
    resolved = truth > truth.max(axis=(1, 2), keepdims=True) - 90.0  # within 90 dB of the peak
    assert float(np.abs(ours - theirs)[resolved].max()) <= LOGMEL_TOLERANCE_DB
    assert float(np.abs(ours - theirs).max()) <= 1e-2


@pytest.mark.parametrize("name", sorted(FEATURE_CONFIGS))
def test_mel_matrix_equals_librosa(name: str) -> None:
    fc = FEATURE_CONFIGS[name]
    theirs = librosa.filters.mel(
        sr=fc.sample_rate, n_fft=fc.window_size, n_mels=fc.mel_bins, fmin=fc.fmin,
        fmax=fc.fmax, htk=False, norm="slaney",
    )  # fmt: skip
    ours = frontend.mel_filterbank(fc.sample_rate, fc.window_size, fc.mel_bins, fc.fmin, fc.fmax)
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("sample_rate", "n_fft", "n_mels", "fmin", "fmax"),
    [(22050, 2048, 128, 0.0, None), (44100, 2048, 96, 20.0, 16000.0), (8000, 256, 40, 0, 4000)],
)
def test_mel_matrix_equals_librosa_beyond_the_configs(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None
) -> None:
    theirs = librosa.filters.mel(
        sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=False,
        norm="slaney",
    )  # fmt: skip
    ours = frontend.mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-7)


@pytest.mark.parametrize("length", [1, 2, 400, 512, 1024])
def test_window_and_scale_equal_librosa(length: int) -> None:
    theirs = librosa.filters.get_window("hann", length, fftbins=True)
    np.testing.assert_array_equal(frontend.hann_window(length), theirs)
    hz = np.array([0.0, 50.0, 999.9, 1000.0, 1000.1, 8000.0, 14000.0, 16000.0])
    np.testing.assert_allclose(frontend.hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-15)
    mels = librosa.hz_to_mel(hz)
    np.testing.assert_allclose(frontend.mel_to_hz(mels), librosa.mel_to_hz(mels), rtol=1e-15)


def test_dft_kernels_equal_numpy_fft() -> None:
    n_fft = 64
    real, imag = frontend.dft_kernels(n_fft)
    frame = np.random.default_rng(1).standard_normal(n_fft)
    spectrum = np.fft.rfft(frame * frontend.hann_window(n_fft))
    np.testing.assert_allclose(real[:, 0] @ frame, spectrum.real, atol=1e-5)
    np.testing.assert_allclose(imag[:, 0] @ frame, spectrum.imag, atol=1e-5)


def test_shorter_window_is_centred_as_torchlibrosa() -> None:
    ours = frontend.STFT(n_fft=512, hop_length=128, win_length=400)
    theirs = tl_stft.STFT(n_fft=512, hop_length=128, win_length=400, window="hann")
    for name in ("conv_real", "conv_imag"):
        diff = getattr(ours, name).weight - getattr(theirs, name).weight
        assert float(diff.abs().max()) <= WEIGHT_TOLERANCE


def test_top_db_and_power_options_as_torchlibrosa() -> None:
    fc = FEATURE_CONFIGS["FEATURES_16K"]
    x = _signal(fc, seconds=1.0)
    ours = frontend.Spectrogram(fc.window_size, fc.hop_size, power=1.0)
    theirs = tl_stft.Spectrogram(fc.window_size, fc.hop_size, power=1.0)
    ours_mel = frontend.LogmelFilterBank(fc.sample_rate, fc.window_size, 32, top_db=40.0)
    theirs_mel = tl_stft.LogmelFilterBank(fc.sample_rate, fc.window_size, 32, top_db=40.0)
    with torch.inference_mode():
        a, b = ours_mel(ours(x)), theirs_mel(theirs(x))
    assert float((a - b).abs().max()) <= LOGMEL_TOLERANCE_DB
    assert float(a.max() - a.min()) == pytest.approx(40.0, abs=1e-4)
    with pytest.raises(ValueError, match="top_db"):
        frontend.LogmelFilterBank(top_db=-1.0)


def test_spec_augmentation_draws_as_torchlibrosa() -> None:
    """Seeded training runs keep their stripes: same draws from the global generator."""
    x = torch.randn(3, 1, 200, 64)
    ours = frontend.SpecAugmentation(64, 2, 8, 2).train()
    theirs = tl_augmentation.SpecAugmentation(64, 2, 8, 2).train()
    torch.manual_seed(123)
    a = ours(x.clone())
    torch.manual_seed(123)
    b = theirs(x.clone())
    assert torch.equal(a, b)
    assert bool((a == 0).any())
    assert torch.equal(ours.eval()(x.clone()), x)  # eval: untouched
    assert list(ours.state_dict()) == list(theirs.state_dict()) == []


def test_model_front_end_is_ours_and_frozen() -> None:
    from panns_core.models import build_model

    model = build_model("Cnn6", classes_num=3)
    assert isinstance(model.spectrogram_extractor, frontend.Spectrogram)
    assert isinstance(model.logmel_extractor, frontend.LogmelFilterBank)
    assert isinstance(model.spec_augmenter, frontend.SpecAugmentation)
    assert "spectrogram_extractor" not in model.stage_names()
    fc = dataclasses.replace(model.feature_config)
    _, theirs = _torchlibrosa(fc)
    assert torch.equal(model.logmel_extractor.melW, theirs.melW)
