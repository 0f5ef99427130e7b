"""The victim's augmentation at three threat levels, written for the evaluation alone.

The engine fits its carrier design through its own augmentation (`UMedProtectLib/method/fitting/augment.py`); if the
victims used that same code, a perturbation tuned to survive it would be measured against the augmentation it was tuned
on. So the evaluation has its own:
- none: the batch as it is (the regime of the public UMed evaluations);
- flip: each slice mirrored left-right and/or top-bottom, each with probability 1/2;
- full: flips, rotation within +-10 degrees, scaling by 0.9-1.1 (bilinear image, nearest label, edge values
  repeated), then intensity gain 0.9-1.1, offset +-0.05 and gamma 0.85-1.15;
- nnunet: nnU-Net v2's own default training pipeline, from the nnunetv2 package (nnunet_augmentation.py): the
  attacker's real tool, with the Gaussian noise, blur and simulated low resolution that `full` lacks. Not in the
  default levels: it needs the evaluation extra's nnunetv2, and it is the level the nnU-Net victims train at.
All random numbers come from a CPU generator and are drawn whatever the data, so a clean run and its protected
twin with the same seed see the same augmentations.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch
import torch.nn.functional as F

LEVELS = ("none", "flip", "full")  # the default threat levels
ALL_LEVELS = LEVELS + ("nnunet",)
MAX_ROTATION_DEG = 10.0
SCALE = (0.9, 1.1)
GAIN = (0.9, 1.1)
OFFSET = 0.05
GAMMA = (0.85, 1.15)


def _draw(count: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return torch.empty(count).uniform_(low, high, generator=generator)


def _flip(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mirror each slice along x and/or y with probability 1/2 each."""
    coins = torch.rand(2, images.shape[0], generator=generator) < 0.5
    for axis, chosen in zip((-1, -2), coins):
        chosen = chosen.to(images.device)
        images = torch.where(chosen[:, None, None, None], images.flip(axis), images)
        labels = torch.where(chosen[:, None, None], labels.flip(axis), labels)
    return images, labels


def _rotate_and_scale(images: torch.Tensor, labels: torch.Tensor,
                      generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """One random rotation and isotropic zoom per slice, about the slice's centre."""
    count = images.shape[0]
    radians = _draw(count, -MAX_ROTATION_DEG, MAX_ROTATION_DEG, generator) * (math.pi / 180)
    zoom = _draw(count, *SCALE, generator)
    # affine_grid maps output coordinates to input ones, so the inverse zoom goes into the matrix.
    matrix = torch.zeros(count, 2, 3)
    matrix[:, 0, 0] = matrix[:, 1, 1] = torch.cos(radians) / zoom
    matrix[:, 0, 1] = -torch.sin(radians) / zoom
    matrix[:, 1, 0] = torch.sin(radians) / zoom
    grid = F.affine_grid(matrix.to(images.device), list(images.shape), align_corners=False)
    moved = F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    moved_labels = F.grid_sample(labels[:, None].to(images.dtype), grid, mode="nearest", padding_mode="zeros",
                                 align_corners=False)
    return moved, moved_labels[:, 0].round().to(labels.dtype)


def _jitter_intensity(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gamma, then gain and offset, per slice; the result stays in [0, 1]."""
    count = images.shape[0]
    shape = (count, 1, 1, 1)
    gamma = _draw(count, *GAMMA, generator).view(shape).to(images.device)
    gain = _draw(count, *GAIN, generator).view(shape).to(images.device)
    offset = _draw(count, -OFFSET, OFFSET, generator).view(shape).to(images.device)
    return (images.clamp_min(1e-6).pow(gamma) * gain + offset).clamp(0.0, 1.0)


def augment(images: torch.Tensor, labels: torch.Tensor, level: str,
            generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """images (N, 1, H, W) in [0, 1] and labels (N, H, W) integer, augmented at `level` (one of ALL_LEVELS)."""
    if level not in ALL_LEVELS:
        raise ValueError(f"unknown augmentation level {level!r}; choose from {', '.join(ALL_LEVELS)}")
    if level == "none":
        return images, labels
    if level == "nnunet":
        from .nnunet_augmentation import nnunet_augment

        return nnunet_augment(images, labels, generator)
    images, labels = _flip(images, labels, generator)
    if level == "flip":
        return images, labels
    images, labels = _rotate_and_scale(images, labels, generator)
    return _jitter_intensity(images, generator), labels
