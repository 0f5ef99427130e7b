"""The texture bound T(x) of UMed's texture-aware perturbation, from 8-neighbour local binary patterns."""

import torch
import torch.nn.functional as F

# The 8 neighbours in circular order, so that adjacent entries are adjacent bits of the pattern.
_NEIGHBOURS = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)]


def lbp_transitions(x: torch.Tensor) -> torch.Tensor:
    """Per pixel, the number of 0/1 changes around the circle of its 8-neighbour LBP, divided by 8 (0..1)."""
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    height, width = x.shape[-2:]
    bits = [
        (padded[..., 1 + dy:1 + dy + height, 1 + dx:1 + dx + width] >= x).float() for dy, dx in _NEIGHBOURS
    ]
    changes = sum((bits[i] - bits[(i + 1) % 8]).abs() for i in range(8))
    return changes / 8.0


def texture_bound(x: torch.Tensor, floor: float) -> torch.Tensor:
    """T(x) in [floor, 1]: flat areas get the floor, busy texture up to 1 (3x3-smoothed LBP transitions)."""
    smooth = F.avg_pool2d(lbp_transitions(x), 3, stride=1, padding=1, count_include_pad=False)
    return floor + (1.0 - floor) * smooth.clamp(0.0, 1.0)
