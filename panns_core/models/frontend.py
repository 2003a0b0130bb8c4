"""The PANNs log-mel front end and SpecAugment, without librosa.

These modules compute what torchlibrosa's ``Spectrogram`` (``freeze_parameters=True``),
``LogmelFilterBank`` and ``SpecAugmentation`` compute, with the same attribute names
(so the state_dict keys ``spectrogram_extractor.stft.conv_real.weight``,
``spectrogram_extractor.stft.conv_imag.weight`` and ``logmel_extractor.melW`` of the
released checkpoints load with ``strict=True``) and the same operations in the same
order. The DFT kernels, the periodic Hann window and the Slaney mel filter bank are
built with numpy alone: importing torchlibrosa imports librosa, scipy.signal and numba,
seconds and ~200 MB at every start for three small matrices.

The kernels equal torchlibrosa's to float32 rounding (its DFT matrix comes from complex
powers ``omega ** (n * k)``, ours from the reduced angle ``2 pi ((n * k) mod N) / N``);
the mel matrix follows ``librosa.filters.mel(..., htk=False, norm="slaney")`` step by
step, float32 intermediate included. Loading a checkpoint replaces both with the
checkpoint's own tensors anyway.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# -- numpy: window, DFT kernels, mel filter bank --------------------------------------------
_F_SP = 200.0 / 3  # Slaney mel scale: linear below 1 kHz ...
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = float(np.log(6.4)) / 27.0  # ... logarithmic above (librosa's np.log)


def hann_window(length: int) -> np.ndarray:
    """Periodic Hann window (float64), computed as ``scipy.signal.get_window("hann", n)``."""
    if length <= 1:
        return np.ones(max(length, 0), dtype=np.float64)
    fac = np.linspace(-np.pi, np.pi, length + 1, dtype=np.float64)
    window = np.zeros(length + 1, dtype=np.float64)
    window += 0.5 * np.cos(0 * fac)
    window += 0.5 * np.cos(1 * fac)
    return window[:-1]


def dft_kernels(n_fft: int, win_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Real and imaginary windowed DFT kernels, each (n_fft // 2 + 1, 1, n_fft) float32.

    Row ``k`` is ``cos(2 pi k n / N) w[n]`` (real) and ``-sin(2 pi k n / N) w[n]``
    (imaginary), ``w`` the periodic Hann window of ``win_length`` centred in ``n_fft``.
    """
    win_length = n_fft if win_length is None else int(win_length)
    if not 0 < win_length <= n_fft:
        raise ValueError(f"win_length must be in 1..{n_fft}, not {win_length}")
    window = np.zeros(n_fft, dtype=np.float64)
    start = (n_fft - win_length) // 2
    window[start : start + win_length] = hann_window(win_length)
    bins = n_fft // 2 + 1
    phase = (np.arange(bins, dtype=np.int64)[:, None] * np.arange(n_fft, dtype=np.int64)) % n_fft
    angle = (2.0 * np.pi / n_fft) * phase
    real = (np.cos(angle) * window).astype(np.float32)
    imag = (-np.sin(angle) * window).astype(np.float32)
    return real[:, None, :], imag[:, None, :]


def hz_to_mel(frequencies: np.ndarray | float) -> np.ndarray:
    """Slaney mel of ``frequencies`` (Hz), as ``librosa.hz_to_mel(..., htk=False)``."""
    hz = np.asarray(frequencies, dtype=np.float64)
    mels = hz / _F_SP
    log = hz >= _MIN_LOG_HZ
    return np.where(log, _MIN_LOG_MEL + np.log(np.where(log, hz, _MIN_LOG_HZ) / _MIN_LOG_HZ)
                    / _LOGSTEP, mels)  # fmt: skip


def mel_to_hz(mels: np.ndarray | float) -> np.ndarray:
    """Hz of Slaney ``mels``, as ``librosa.mel_to_hz(..., htk=False)``."""
    mels = np.asarray(mels, dtype=np.float64)
    hz = _F_SP * mels
    return np.where(mels >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)),
                    hz)  # fmt: skip


def mel_filterbank(
    sample_rate: float, n_fft: int, n_mels: int = 64, fmin: float = 0.0,
    fmax: float | None = None,
) -> np.ndarray:  # fmt: skip
    """(n_mels, n_fft // 2 + 1) float32 triangular filters, Slaney mel, area normalised.

    The same matrix as ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels,
    fmin=fmin, fmax=fmax, htk=False, norm="slaney")``: the filters are stored as float32
    before the normalisation is applied, as librosa does.
    """
    if fmax is None:
        fmax = float(sample_rate) / 2
    n_mels = int(n_mels)
    weights = np.zeros((n_mels, int(1 + n_fft // 2)), dtype=np.float32)
    fft_hz = np.fft.rfftfreq(n=n_fft, d=1.0 / sample_rate)
    mel_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(mel_hz)
    ramps = np.subtract.outer(mel_hz, fft_hz)
    for i in range(n_mels):
        lower = -ramps[i] / widths[i]
        upper = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_hz[2 : n_mels + 2] - mel_hz[:n_mels]))[:, np.newaxis]
    return weights


# -- modules -----------------------------------------------------------------------------------
class STFT(nn.Module):
    """STFT as two frozen Conv1d layers (real and imaginary windowed DFT kernels).

    ``forward`` returns (real, imag), each (batch, 1, frames, n_fft // 2 + 1).
    """

    def __init__(
        self, n_fft: int = 2048, hop_length: int | None = None, win_length: int | None = None,
        center: bool = True, pad_mode: str = "reflect",
    ) -> None:  # fmt: skip
        super().__init__()
        if pad_mode not in ("constant", "reflect"):
            raise ValueError(f"pad_mode must be 'constant' or 'reflect', not {pad_mode!r}")
        self.n_fft = int(n_fft)
        self.win_length = self.n_fft if win_length is None else int(win_length)
        self.hop_length = self.win_length // 4 if hop_length is None else int(hop_length)
        self.center = center
        self.pad_mode = pad_mode
        bins = self.n_fft // 2 + 1
        conv = dict(kernel_size=self.n_fft, stride=self.hop_length, padding=0, bias=False)
        self.conv_real = nn.Conv1d(1, bins, **conv)
        self.conv_imag = nn.Conv1d(1, bins, **conv)
        real, imag = dft_kernels(self.n_fft, self.win_length)
        with torch.no_grad():
            self.conv_real.weight.copy_(torch.from_numpy(real))
            self.conv_imag.weight.copy_(torch.from_numpy(imag))
        for parameter in self.parameters():
            parameter.requires_grad = False

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = waveform[:, None, :]  # (batch, 1, samples)
        if self.center:
            x = F.pad(x, pad=(self.n_fft // 2, self.n_fft // 2), mode=self.pad_mode)
        real = self.conv_real(x)[:, None, :, :].transpose(2, 3)
        imag = self.conv_imag(x)[:, None, :, :].transpose(2, 3)
        return real, imag


class Spectrogram(nn.Module):
    """Power spectrogram (batch, 1, frames, n_fft // 2 + 1) of (batch, samples)."""

    def __init__(
        self, n_fft: int = 2048, hop_length: int | None = None, win_length: int | None = None,
        center: bool = True, pad_mode: str = "reflect", power: float = 2.0,
    ) -> None:  # fmt: skip
        super().__init__()
        self.power = power
        self.stft = STFT(n_fft, hop_length, win_length, center=center, pad_mode=pad_mode)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        real, imag = self.stft(waveform)
        spectrogram = real**2 + imag**2
        if self.power != 2.0:
            spectrogram = spectrogram ** (self.power / 2.0)
        return spectrogram


class LogmelFilterBank(nn.Module):
    """Mel filter bank (frozen ``melW``, (n_fft // 2 + 1, n_mels)) and power to dB.

    dB is ``10 log10(max(x, amin)) - 10 log10(max(amin, ref))``, clipped ``top_db`` below
    the maximum when ``top_db`` is set (PANNs: ref 1, amin 1e-10, no top_db).
    """

    def __init__(
        self, sr: float = 22050, n_fft: int = 2048, n_mels: int = 64, fmin: float = 0.0,
        fmax: float | None = None, is_log: bool = True, ref: float = 1.0, amin: float = 1e-10,
        top_db: float | None = 80.0,
    ) -> None:  # fmt: skip
        super().__init__()
        if top_db is not None and top_db < 0:
            raise ValueError(f"top_db must be non-negative, not {top_db}")
        self.is_log = is_log
        self.ref = ref
        self.amin = amin
        self.top_db = top_db
        if fmax is None:
            fmax = sr // 2
        weights = np.ascontiguousarray(mel_filterbank(sr, n_fft, n_mels, fmin, fmax).T)
        self.melW = nn.Parameter(torch.from_numpy(weights), requires_grad=False)

    def forward(self, spectrogram: torch.Tensor) -> torch.Tensor:
        mel = torch.matmul(spectrogram, self.melW)
        return self.power_to_db(mel) if self.is_log else mel

    def power_to_db(self, power: torch.Tensor) -> torch.Tensor:
        log_spec = 10.0 * torch.log10(torch.clamp(power, min=self.amin, max=np.inf))
        log_spec -= 10.0 * np.log10(np.maximum(self.amin, self.ref))
        if self.top_db is not None:
            log_spec = torch.clamp(log_spec, min=log_spec.max().item() - self.top_db, max=np.inf)
        return log_spec


class DropStripes(nn.Module):
    """Zero up to ``stripes_num`` random stripes (width < ``drop_width``) along ``dim``
    (2: time, 3: frequency) of (batch, channels, time, freq), in place, when training."""

    def __init__(self, dim: int, drop_width: int, stripes_num: int) -> None:
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"dim must be 2 (time) or 3 (frequency), not {dim}")
        self.dim = dim
        self.drop_width = drop_width
        self.stripes_num = stripes_num

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndimension() != 4:
            raise ValueError(f"expected (batch, channels, time, freq), got {tuple(x.shape)}")
        if not self.training:
            return x
        total_width = x.shape[self.dim]
        for n in range(x.shape[0]):
            self._transform_slice(x[n], total_width)
        return x

    def _transform_slice(self, e: torch.Tensor, total_width: int) -> None:
        # the global generator, drawn in torchlibrosa's order: seeded runs stay the same
        for _ in range(self.stripes_num):
            distance = torch.randint(low=0, high=self.drop_width, size=(1,))[0]
            bgn = torch.randint(low=0, high=total_width - distance, size=(1,))[0]
            if self.dim == 2:
                e[:, bgn : bgn + distance, :] = 0
            else:
                e[:, :, bgn : bgn + distance] = 0


class SpecAugmentation(nn.Module):
    """SpecAugment (Park et al. 2019): time stripes, then frequency stripes."""

    def __init__(
        self, time_drop_width: int, time_stripes_num: int, freq_drop_width: int,
        freq_stripes_num: int,
    ) -> None:  # fmt: skip
        super().__init__()
        self.time_dropper = DropStripes(2, time_drop_width, time_stripes_num)
        self.freq_dropper = DropStripes(3, freq_drop_width, freq_stripes_num)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.freq_dropper(self.time_dropper(x))
