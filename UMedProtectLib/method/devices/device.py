"""Choosing the compute device, and falling back to smaller batches, then the CPU, when a GPU runs out of memory."""

import warnings
from typing import Callable, TypeVar

import torch

from ...errors import InputError

T = TypeVar("T")


def resolve_device(name: str) -> torch.device:
    """auto -> CUDA, then Apple MPS, then CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {name!r} was asked for but no CUDA GPU is available; use --device auto or cpu")
    if name.startswith("cuda:") and int(name.split(":")[1]) >= torch.cuda.device_count():
        raise InputError(f"device {name!r} does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise InputError("device 'mps' was asked for but Apple MPS is not available; use --device auto or cpu")
    return torch.device(name)


def _is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def run_with_memory_fallback(job: Callable[[torch.device, int], T], device: torch.device, batch_size: int) -> T:
    """Run job(device, batch_size); on GPU out-of-memory halve the batch, and below 1 retry on the CPU."""
    while True:
        try:
            return job(device, batch_size)
        except RuntimeError as error:
            if device.type == "cpu" or not _is_out_of_memory(error):
                raise
            if device.type == "cuda":
                torch.cuda.empty_cache()
            if batch_size > 1:
                batch_size //= 2
                warnings.warn(f"{device} ran out of memory; retrying with batch size {batch_size}")
            else:
                warnings.warn(f"{device} ran out of memory even with batch size 1; falling back to the CPU")
                device = torch.device("cpu")
