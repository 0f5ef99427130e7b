"""How much memory a protection run needs, how much the machine has, and the up-front refusal when it is short."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from ..errors import InputError

# Per voxel, for a voxel type of b bytes: the image as read and as an array (2b), the protected copy and its written
# copy (2b), the label and ROI masks (about 4), the float32 difference and its written copy (8); and a fixed part
# for torch. Measured on a 512x512x600 int16 CT (benchmarks/protect_benchmark.py --cases c --command-line,
# docs/guarantees.md): the estimate errs high (it may refuse a volume that would just have fitted).
BYTES_PER_VOXEL_BASE = 12
VOXEL_TYPE_COPIES = 4
FIXED_BYTES = 2**30


def needed_bytes(voxels: int, voxel_bytes: int) -> int:
    """Estimated peak memory of `umed-protect protect` on a volume of this many voxels of this size."""
    return voxels * (BYTES_PER_VOXEL_BASE + VOXEL_TYPE_COPIES * voxel_bytes) + FIXED_BYTES


def _meminfo_available() -> Optional[int]:
    """MemAvailable of /proc/meminfo in bytes (Linux), else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_limit() -> Optional[int]:
    """The memory limit of this process's container (cgroup v2 or v1), else None."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:
            return int(text)
    return None


def available_bytes() -> Optional[int]:
    """Memory this process can still use: the smaller of the machine's available memory and a container limit."""
    figures = [v for v in (_meminfo_available(), _cgroup_limit()) if v is not None]
    return min(figures) if figures else None


def check_fits(voxels: int, voxel_bytes: int, what: str) -> None:
    """Refuse, with a one-line estimate, a volume whose protection would not fit in the memory available now."""
    need, have = needed_bytes(voxels, voxel_bytes), available_bytes()
    if have is not None and need > have:
        raise InputError(f"{what} has {voxels:,} voxels: protecting it needs about {need / 2**30:.1f} GB of memory, "
                         f"and {have / 2**30:.1f} GB are available; crop it to the region around the labels first")
