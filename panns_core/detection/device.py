"""Compute device choice (cuda, then mps, then cpu), thread count and the fast path.

The fast path is opt-in (:func:`fast_mode`): fp16 autocast on CUDA and MPS; on the CPU
int8 (ONNX Runtime) or bf16 autocast where one measures faster than exact and keeps the
events; exact elsewhere.
Which engine runs: :mod:`panns_core.detection.engines`.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from ..errors import DeviceError

if TYPE_CHECKING:  # pragma: no cover
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def _mps_available(torch) -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def available_devices() -> list[str]:
    """Device kinds usable here, best first (always ends with "cpu")."""
    import torch

    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    if _mps_available(torch):
        found.append("mps")
    return [*found, "cpu"]


def choose_device(preference: str | torch.device | None = None) -> torch.device:
    """The device to run on: ``None``/"auto" picks cuda, then mps, then cpu.

    An explicit choice ("cpu", "cuda", "cuda:1", "mps") that is not available raises
    DeviceError saying what is available.
    """
    import torch

    if isinstance(preference, torch.device):
        preference = str(preference)
    name = (preference or "auto").strip().lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(
            f"Unknown compute device {preference!r}; use one of {', '.join(DEVICE_CHOICES)}."
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "CUDA was requested but no CUDA GPU is usable here (available: "
                f"{', '.join(available_devices())}); use --device auto or --device cpu."
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(
                f"There is no {device} (this machine has {torch.cuda.device_count()} CUDA "
                "device(s)); pick another index."
            )
    elif device.type == "mps" and not _mps_available(torch):
        raise DeviceError(
            "Apple MPS was requested but is not available here (available: "
            f"{', '.join(available_devices())}); use --device auto or --device cpu."
        )
    elif device.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(
            f"Unsupported compute device {preference!r}; use one of {', '.join(DEVICE_CHOICES)}."
        )
    return device


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op thread count (None leaves it); returns the count in use."""
    import torch

    if threads is not None:
        if int(threads) < 1:
            raise DeviceError(f"The thread count must be at least 1, not {threads}.")
        torch.set_num_threads(int(threads))
    return torch.get_num_threads()


def torch_version() -> str | None:
    """torch's version, without importing it when nothing did."""
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        return str(torch.__version__)
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("torch")
    except PackageNotFoundError:  # pragma: no cover - torch is a dependency
        return None


def default_threads() -> int:
    """Cores this process may use (respects CPU affinity)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def fast_mode(device: torch.device, fast: bool, model: Any = None) -> str:
    """The precision a run uses: "fp32" (exact), or the fast path's "int8", "bf16" or
    "fp16".

    CUDA and MPS: fp16 autocast. CPU: what :func:`panns_core.detection.engines.fast_cpu_choice`
    measured fastest among the candidates that keep the events (cached); before the
    first measurement bf16 where it is native, else exact.
    """
    if not fast:
        return "fp32"
    if device.type in ("cuda", "mps"):
        return "fp16"
    from .engines import cached_fast_precision
    from .quantized import cpu_has_native_bf16

    known = cached_fast_precision(getattr(model, "arch_name", None) if model else None)
    return known or ("bf16" if cpu_has_native_bf16() else "fp32")


def precision_name(device: torch.device, fast: bool, model: Any = None) -> str:
    """Alias of :func:`fast_mode` (the name stored with scores)."""
    return fast_mode(device, fast, model)


def autocast(device: torch.device, mode: str) -> contextlib.AbstractContextManager:
    """The autocast context of a precision mode (a no-op for fp32 and int8)."""
    import torch

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)
