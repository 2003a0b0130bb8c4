"""Input devices through sounddevice/PortAudio, with errors that say what to do.

sounddevice is imported lazily: importing it enumerates devices (and fails when the
PortAudio library is missing), which must not happen at ``import panns_core``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import DeviceError

COMMON_RATES = (8000, 16000, 22050, 32000, 44100, 48000, 96000)
DTYPES = ("int16", "int32", "float32")


@dataclass(frozen=True)
class InputDevice:
    """One capture device as PortAudio lists it."""

    index: int
    name: str
    hostapi: str
    max_channels: int
    default_rate: float
    is_default: bool = False

    def __str__(self) -> str:
        mark = " (default)" if self.is_default else ""
        return (
            f"{self.index}: {self.name} [{self.hostapi}] {self.max_channels} ch, "
            f"{self.default_rate:g} Hz{mark}"
        )


def sounddevice() -> Any:
    """The sounddevice module, or DeviceError when PortAudio is missing."""
    try:
        import sounddevice as sd
    except OSError as error:  # "PortAudio library not found"
        raise DeviceError(
            f"Audio input is unavailable: {error}. Install PortAudio (Debian/Ubuntu: "
            "`apt install libportaudio2`; macOS: `brew install portaudio`) and try again."
        ) from None
    return sd


def list_input_devices() -> list[InputDevice]:
    """Every device with at least one input channel."""
    sd = sounddevice()
    hostapis = sd.query_hostapis()
    try:
        default_in = sd.default.device[0]
    except Exception:  # pragma: no cover - PortAudio without defaults
        default_in = -1
    found = []
    for info in sd.query_devices():
        if info["max_input_channels"] < 1:
            continue
        found.append(
            InputDevice(
                index=int(info["index"]),
                name=str(info["name"]),
                hostapi=str(hostapis[info["hostapi"]]["name"]),
                max_channels=int(info["max_input_channels"]),
                default_rate=float(info["default_samplerate"]),
                is_default=int(info["index"]) == default_in,
            )
        )
    return found


def _names(devices: list[InputDevice]) -> str:
    return "; ".join(f"{d.index}: {d.name}" for d in devices) or "none"


def resolve_input_device(device: int | str | None) -> InputDevice:
    """The input device for an index, a (sub)string of its name, or None (default).

    Raises DeviceError listing the available inputs when nothing matches.
    """
    devices = list_input_devices()
    if not devices:
        raise DeviceError(
            "No audio input device found. Connect a microphone or audio interface (and "
            "check that the system sees it), then try again."
        )
    if device is None or device == "":
        for d in devices:
            if d.is_default:
                return d
        return devices[0]
    if isinstance(device, str) and device.strip().lstrip("-").isdigit():
        device = int(device)
    if isinstance(device, int):
        for d in devices:
            if d.index == device:
                return d
        raise DeviceError(
            f"There is no input device with index {device}. Available inputs: "
            f"{_names(devices)}. Pick one of these (`panns-sed record --list-devices`)."
        )
    exact = [d for d in devices if d.name == device]
    matches = exact or [d for d in devices if device.lower() in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeviceError(
            f"No input device matches {device!r}. Available inputs: {_names(devices)}. "
            "Is it plugged in? Pick one of these by index or name."
        )
    raise DeviceError(
        f"{device!r} matches several input devices ({_names(matches)}); give its index."
    )


def supported_rates(device: InputDevice, channels: int = 1, dtype: str = "int16") -> list[int]:
    """The common sample rates the device accepts for this channel count."""
    sd = sounddevice()
    rates = []
    for rate in COMMON_RATES:
        try:
            sd.check_input_settings(
                device=device.index, samplerate=rate, channels=channels, dtype=dtype
            )
        except Exception:
            continue
        rates.append(rate)
    return rates
