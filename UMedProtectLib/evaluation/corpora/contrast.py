"""Synthetic contrast ladder: lesions whose contrast is a fixed multiple of the budget, on controlled noise.

Each study is one synthetic patient (z, 64, 64): air at exactly 0, a skin rim at exactly 1 (so the 0.5th and 99.5th
percentiles are 0 and 1, and the engine's normalisation leaves the image unchanged: epsilon means the same to
both), soft tissue with a smooth low-frequency field, an organ, and 1-2 lesions inside the organ. Every lesion of a
study has the same contrast, `multiple` x epsilon, hypo- or hyper-intense, and the same size class (small: in-plane
radius 3-4.5 px, large: 7-10 px). Gaussian noise of a fixed std (default epsilon / 2) is added inside the body.
The study's group ("2x small", ...) lets the harness report DSC per contrast and size.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from .corpus import Corpus, Study
from .synthetic import blob_mask, smooth_field

MULTIPLES = (1, 2, 4, 8)
SIZE_CLASSES = {"small": (3.0, 4.5), "large": (7.0, 10.0)}
GROUPS = tuple(f"{m}x {s}" for m in MULTIPLES for s in SIZE_CLASSES)


def contrast_study(seed: int, multiple: float, size_class: str, epsilon: float, noise: float,
                   slices: int = 8, size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """One patient: image (z, size, size) float32 in [0, 1] and its lesion label (uint8)."""
    rng = np.random.default_rng(seed)
    shape = (slices, size, size)
    centre = (slices / 2, size / 2 + rng.uniform(-2, 2), size / 2 + rng.uniform(-2, 2))
    body = blob_mask(rng, shape, centre, (slices * 4, size * rng.uniform(0.40, 0.45), size * rng.uniform(0.42, 0.47)),
                 rng.uniform(-0.3, 0.3), 0.02, 6)
    inner = ndimage.binary_erosion(body, np.ones((1, 5, 5)))
    organ_centre = (slices / 2, centre[1] + rng.uniform(-4, 4), centre[2] + rng.uniform(-4, 4))
    organ_radii = (slices * 2, size * rng.uniform(0.30, 0.33), size * rng.uniform(0.31, 0.35))
    organ = blob_mask(rng, shape, organ_centre, organ_radii, rng.uniform(0, np.pi), 0.15, (2, 4, 4))
    organ &= ndimage.binary_erosion(inner, np.ones((1, 3, 3)))
    # Smooth fields of a few /255 only: local contrast at the lesion's scale stays the lesion's own.
    image = 0.35 + (3 / 255) * smooth_field(rng, shape, (2, 8, 8))
    organ_level = 0.5
    image[organ] = organ_level + (2 / 255) * smooth_field(rng, shape, (2, 6, 6))[organ]
    low, high = SIZE_CLASSES[size_class]
    label = np.zeros(shape, bool)
    sign = rng.choice([-1.0, 1.0])
    core = np.argwhere(ndimage.binary_erosion(organ, np.ones((1, 3, 3)), iterations=int(high) + 1))
    margin = np.ones((1, 9, 9), bool)  # the ring that measures the contrast (3 px) plus a safety margin
    for _ in range(int(rng.integers(1, 3))):
        # A lesion is kept only with its surroundings inside the organ, so its contrast is against the organ alone.
        for _attempt in range(20):
            where = core[rng.integers(len(core))]
            radius = rng.uniform(low, high)
            lesion = blob_mask(rng, shape, (slices / 2, where[1], where[2]),
                           (slices * rng.uniform(0.35, 0.5), radius, radius * rng.uniform(0.8, 1.25)),
                           rng.uniform(0, np.pi), 0.1, 1.5)
            if lesion.any() and not (ndimage.binary_dilation(lesion, margin) & ~organ).any():
                label |= lesion
                break
    image[label] = organ_level + sign * multiple * epsilon + (image[label] - organ_level)
    image = image + noise * rng.standard_normal(shape)
    image[~body] = 0.0
    image[body & ~inner] = 1.0  # skin rim: fixes the robust range at [0, 1]
    return np.clip(image, 0.0, 1.0).astype(np.float32), label.astype(np.uint8)


def contrast_corpus(epsilon: float = 4 / 255, noise: Optional[float] = None,
                    studies_per_group: Tuple[int, int] = (4, 2), slices: int = 8, size: int = 64,
                    seed: int = 4321) -> Corpus:
    """Every (contrast multiple, size class) group gets the same number of training and test patients."""
    noise = epsilon / 2 if noise is None else noise
    train, test = [], []
    index = 0
    for split, count in (("train", studies_per_group[0]), ("test", studies_per_group[1])):
        for group in GROUPS:
            multiple, size_class = group.split("x ")
            for _ in range(count):
                image, label = contrast_study(seed + index, float(multiple), size_class, epsilon, noise, slices,
                                              size)
                study = Study(f"contrast-{split}-{index:03d}", image, label,
                              list(range(index * slices, (index + 1) * slices)), group=group)
                (train if split == "train" else test).append(study)
                index += 1
    return Corpus(
        name="synth-contrast",
        description=(f"synthetic lesions of contrast {', '.join(f'{m}x' for m in MULTIPLES)} epsilon "
                     f"({epsilon * 255:g}/255), small and large, noise std {noise * 255:g}/255, {slices} slices of "
                     f"{size}x{size} per patient, split by patient"),
        train=train, test=test)

