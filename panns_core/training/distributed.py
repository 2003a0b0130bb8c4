"""Data-parallel training (DDP) helpers: process group, device per rank, agreement.

A run started by ``torchrun`` has N processes; each takes the chunks r, r+N, ... of
every global batch (see :mod:`.trainer`). Only the main process (rank 0) validates,
writes files and decides to stop; the others take its decisions through :func:`agree`.
With one process every helper here is a no-op.
"""

from __future__ import annotations

import os

import torch
from torch import nn

# What the processes can agree on, as broadcast codes (index in this tuple).
STOP_REASONS = (None, "cancelled", "time_budget", "early_stopped")


def dist_info() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed() -> tuple[int, int]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, MASTER_ADDR ...).

    gloo on CPU, nccl when CUDA is there. Returns (rank, world size); (0, 1) when
    not started by torchrun.
    """
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    return dist_info()


def device_for(name: str, rank: int) -> torch.device:
    """The torch device ``name`` (cpu, cuda, mps, auto) means for process ``rank``."""
    from ..errors import DeviceError

    if name in ("auto", ""):
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA was asked for but no CUDA GPU is available; use --device cpu.")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", rank)))
    if name == "mps" and not (getattr(torch.backends, "mps", None)
                              and torch.backends.mps.is_available()):  # fmt: skip
        raise DeviceError("MPS was asked for but is not available; use --device cpu.")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"Unknown device {name!r}; use cpu, cuda, mps or auto.") from None


def average_buffers(model: nn.Module, world: int) -> None:
    """Average batch-norm running statistics over the DDP processes (end of epoch)."""
    if world == 1:
        return
    import torch.distributed as dist

    for name, buffer in model.named_buffers():
        if name.endswith(("running_mean", "running_var")):
            dist.all_reduce(buffer)
            buffer /= world


def sum_over_processes(total: torch.Tensor, world: int) -> None:
    """Sum ``total`` in place over the processes."""
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(total)


def agree(reason: str | None, world: int) -> str | None:
    """All processes take the main process's decision (one of :data:`STOP_REASONS`)."""
    if world == 1:
        return reason
    import torch.distributed as dist

    flag = torch.tensor([STOP_REASONS.index(reason) if reason in STOP_REASONS else 0])
    dist.broadcast(flag, src=0)
    return STOP_REASONS[int(flag)]


def barrier(world: int) -> None:
    """Wait for every process (after the main one wrote files)."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()
