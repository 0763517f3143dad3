"""Which device torch work runs on: CUDA, then Apple MPS, then the CPU, unless the user names one."""
from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The user asked for a device this machine does not have."""


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks the best available device; 'cpu', 'cuda', 'cuda:1' or 'mps' are checked, not assumed."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("CUDA was asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise DeviceError("Apple MPS was asked for, but it is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise DeviceError(f"unknown device '{name}'; use auto, cpu, cuda or mps") from None


def as_device(device: torch.device | str | None) -> torch.device:
    """A device argument as a torch.device; None (a script that names none) means the CPU."""
    return torch.device("cpu") if device is None else torch.device(device)


def synchronize(device: torch.device | str) -> None:
    """Wait for queued GPU work, so a wall-clock timing covers the work and not just its launch."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def rank_device(device: torch.device, local_rank: int) -> torch.device:
    """The device of one process in a multi-process job: on a box with several GPUs, rank r takes cuda:r."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device


def collective_device(backend: str) -> torch.device:
    """Where a process group's tensors must be for `backend`: NCCL moves CUDA tensors only, gloo CPU ones."""
    return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")

