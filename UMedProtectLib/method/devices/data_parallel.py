"""Fitting on several processes under `torchrun`: DistributedDataParallel, per-rank sampling, one writing rank.

Outside torchrun (or with one process) every function here is the identity, so the single-process path is
unchanged. Under `torchrun --nproc-per-node N`, each rank fits the same networks (DDP broadcasts rank 0's
initial weights and averages the gradients) on patches drawn with its own seed; rank 0 writes the results.
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import nn

from ...settings import ProtectSettings


def active() -> bool:
    """True inside a process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def is_writer() -> bool:
    """True on the rank that writes files and reports progress (rank 0, or the only process)."""
    return not active() or dist.get_rank() == 0


def rank_seed(seed: int) -> int:
    """The sampling seed of this rank: each rank draws its own slices and patches."""
    return seed + 7919 * dist.get_rank() if active() else seed


def data_parallel(module: nn.Module) -> nn.Module:
    """The module wrapped in DistributedDataParallel in a process group, else the module itself."""
    if not active():
        return module
    device = next(module.parameters()).device
    return nn.parallel.DistributedDataParallel(module, device_ids=[device.index] if device.type == "cuda" else None)


def mean_over_ranks(value: float) -> float:
    """The mean of a number over the ranks, so that every rank takes the same early-stopping decision."""
    if not active():
        return value
    tensor = torch.tensor([value], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        tensor = tensor.cuda()
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def join_torchrun(settings: ProtectSettings) -> ProtectSettings:
    """Under torchrun with several processes: join the process group and give this rank its own GPU, if any."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or active():
        return settings
    gpu = settings.device in ("auto", "cuda") and torch.cuda.is_available()
    dist.init_process_group("nccl" if gpu else "gloo")
    atexit.register(dist.destroy_process_group)
    if not gpu:
        return settings if settings.device != "auto" else settings.with_changes(device="cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(local_rank)
    return settings.with_changes(device=f"cuda:{local_rank}")
