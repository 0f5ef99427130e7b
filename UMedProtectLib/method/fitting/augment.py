"""Flips, small rotation and scaling, intensity jitter: what the carrier design is fitted through (not the victims)."""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F


def augment_batch(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
                  max_rotation_deg: float = 10.0, scale_range: Tuple[float, float] = (0.9, 1.1),
                  gain_range: Tuple[float, float] = (0.9, 1.1), bias: float = 0.05,
                  gamma_range: Tuple[float, float] = (0.85, 1.15)) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random flips, rotation, scale (bilinear image, nearest label), then gain, bias and gamma on the image.

    images (N, 1, H, W) in [0, 1], labels (N, H, W) int64. The random numbers come from `generator` on the CPU, so
    a clean run and its protected twin with the same seed see the same augmentations.
    """
    n = images.shape[0]
    device = images.device

    def uniform(low: float, high: float) -> torch.Tensor:
        return (low + (high - low) * torch.rand(n, generator=generator)).to(device)

    flip_x = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(device)
    flip_y = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).to(device)
    angle = uniform(-max_rotation_deg, max_rotation_deg) * math.pi / 180
    scale = uniform(*scale_range)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    # Output-to-input map: rotation-scale times the flips (a flip negates one input axis).
    theta = torch.stack([torch.stack([cos * flip_x, -sin * flip_y, zero], 1),
                         torch.stack([sin * flip_x, cos * flip_y, zero], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    warped = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    warped_labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                                  align_corners=False)[:, 0].long()
    gain = uniform(*gain_range)[:, None, None, None]
    offset = uniform(-bias, bias)[:, None, None, None]
    gamma = uniform(*gamma_range)[:, None, None, None]
    # The floor keeps the gradient of x ** gamma finite at 0 when the engine differentiates through this.
    warped = (warped.clamp(1e-6, 1.0) ** gamma * gain + offset).clamp(0.0, 1.0)
    return warped, warped_labels
