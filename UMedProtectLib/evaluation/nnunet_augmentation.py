"""nnU-Net's default training augmentation, from the nnunetv2 package itself, for the hand-written victims.

The augmentation level `nnunet` runs the exact transform pipeline nnU-Net v2's default trainer builds for a 2D
configuration (`nnUNetTrainer.get_training_transforms`, batchgeneratorsv2): rotation and scaling, Gaussian noise,
Gaussian blur, brightness, contrast, simulated low resolution, gamma (inverted and not) and mirroring. nnU-Net runs
it on z-scored images, so each slice is z-scored for the pipeline and mapped back to its own scale after it, which
keeps the noise and blur as strong relative to the image as nnU-Net makes them.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Tuple

import numpy as np
import torch


@lru_cache(maxsize=4)
def _pipeline(height: int, width: int):
    from nnunetv2.training.nnUNetTrainer.nnUNetTrainer import nnUNetTrainer

    # nnU-Net's own rule for 2D patches (configure_rotation_dummyDA_mirroring_and_inital_patch_size).
    limit = math.pi / 12 if max(height, width) / min(height, width) > 1.5 else math.pi
    return nnUNetTrainer.get_training_transforms((height, width), (-limit, limit), None, (0, 1), False, [False])


def nnunet_augment(images: torch.Tensor, labels: torch.Tensor,
                   generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """images (N, 1, H, W) in [0, 1] and labels (N, H, W) through nnU-Net's default 2D training pipeline.

    batchgeneratorsv2 draws from NumPy's and torch's global generators; both are seeded from `generator` and
    restored afterwards, so a clean run and its protected twin with the same seed see the same augmentations.
    """
    pipeline = _pipeline(*images.shape[-2:])
    seed = int(torch.randint(2 ** 31 - 1, (1,), generator=generator))
    numpy_state = np.random.get_state()
    out_images, out_labels = [], []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        for image, label in zip(images.cpu(), labels.cpu()):
            mean, std = image.mean(), image.std().clamp_min(1e-6)
            done = pipeline(image=((image - mean) / std).float(), segmentation=label[None].to(torch.int16))
            out_images.append(done["image"] * std + mean)
            out_labels.append(done["segmentation"][0].to(labels.dtype))
    np.random.set_state(numpy_state)
    return torch.stack(out_images).to(images.device), torch.stack(out_labels).to(labels.device)
