"""Synthetic corpus: CT- and MR-like volumes with a textured organ and 1-3 lesions of varied shape and contrast.

Each study is a small volume (z, 96, 96) of one synthetic "patient", so the split is by subject:
- body: a rotated ellipse of soft tissue with a darker fat rim, on air;
- organ: an ellipsoid deformed by a smooth 3D random field (lobulated, varies slice to slice), with its own
  texture (smoothed noise at a random grain of 0.8-3 px) and level;
- lesions: 1-3 deformed ellipsoids inside the organ, each hypo- or hyper-intense by 12-60/255 with its own
  texture grain, some with a brighter rim (enhancing);
- acquisition: Gaussian noise of std 3-12/255; MR-like studies (half) get a smooth multiplicative bias field
  and Rician-like magnitude noise, CT-like ones a partial-volume blur.
Labels: task "organ" (organ including its lesions) or "lesion" (the lesions only).
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from scipy import ndimage

from .corpus import Corpus, Study, normalise_percentiles

TASKS = ("organ", "lesion")


def smooth_field(rng: np.random.Generator, shape: Tuple[int, ...], sigma) -> np.ndarray:
    """Smooth Gaussian random field with unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-8)


def _grid(shape: Tuple[int, int, int]):
    z, y, x = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in shape), indexing="ij")
    return z, y, x


def blob_distance(rng, shape, centre, radii, angle, roughness, grain) -> np.ndarray:
    """Distance from a rotated ellipsoid's centre in units of its radii, pushed in and out by a smooth random field:
    below 1 inside the blob."""
    z, y, x = _grid(shape)
    dy, dx = y - centre[1], x - centre[2]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    distance = np.sqrt(((z - centre[0]) / radii[0]) ** 2 + (v / radii[1]) ** 2 + (u / radii[2]) ** 2)
    return distance + roughness * smooth_field(rng, shape, grain)


def blob_mask(rng, shape, centre, radii, angle, roughness, grain) -> np.ndarray:
    """A rotated ellipsoid whose surface is pushed in and out by a smooth random field."""
    return blob_distance(rng, shape, centre, radii, angle, roughness, grain) < 1.0


def synthetic_study(seed: int, slices: int = 10, size: int = 96) -> Dict[str, np.ndarray]:
    """One synthetic patient: image in [0, 1] and a label with 1 = organ, 2 = lesion."""
    rng = np.random.default_rng(seed)
    shape = (slices, size, size)
    mr_like = bool(rng.random() < 0.5)
    centre = (slices / 2, size / 2 + rng.uniform(-4, 4), size / 2 + rng.uniform(-4, 4))
    body = blob_mask(rng, shape, centre, (slices * 4, rng.uniform(30, 42), rng.uniform(36, 46)),
                 rng.uniform(-0.3, 0.3), 0.03, 6)
    inner = ndimage.binary_erosion(body, np.ones((1, 5, 5)), iterations=int(rng.integers(1, 3)))
    organ_centre = (slices / 2 + rng.uniform(-2, 2), centre[1] + rng.uniform(-10, 10), centre[2] + rng.uniform(-12, 12))
    organ_radii = (slices * rng.uniform(0.8, 1.5), rng.uniform(12, 22), rng.uniform(14, 26))
    organ = blob_mask(rng, shape, organ_centre, organ_radii, rng.uniform(0, np.pi), rng.uniform(0.1, 0.35),
                      (2, 4, 4)) & inner
    lesions = np.zeros(shape, bool)
    image = np.where(body, 0.35, 0.02).astype(np.float32)
    image[body & ~inner] = 0.2  # fat rim
    tissue_level = rng.uniform(0.35, 0.5)
    image[inner] = tissue_level + 0.04 * smooth_field(rng, shape, 3)[inner]
    organ_level = tissue_level + rng.choice([-1, 1]) * rng.uniform(0.08, 0.2)
    organ_texture = smooth_field(rng, shape, (0.5, *(rng.uniform(0.8, 3.0),) * 2))
    image[organ] = organ_level + rng.uniform(0.015, 0.05) * organ_texture[organ]
    organ_voxels = np.argwhere(ndimage.binary_erosion(organ, iterations=3))
    for _ in range(int(rng.integers(1, 4))):
        if len(organ_voxels) == 0:
            break
        where = organ_voxels[rng.integers(len(organ_voxels))]
        radius = rng.uniform(3, 8)
        lesion = blob_mask(rng, shape, where, (rng.uniform(2, 5), radius, radius * rng.uniform(0.6, 1.4)),
                       rng.uniform(0, np.pi), rng.uniform(0.1, 0.4), 1.5) & organ
        contrast = rng.choice([-1, 1]) * rng.uniform(12, 60) / 255
        grain = rng.uniform(0.7, 2.0)
        image[lesion] = organ_level + contrast + rng.uniform(0.01, 0.04) * smooth_field(rng, shape, grain)[lesion]
        if rng.random() < 0.3:  # enhancing rim
            rim = lesion & ~ndimage.binary_erosion(lesion, np.ones((1, 3, 3)))
            image[rim] += abs(contrast) * 0.6
        lesions |= lesion
    noise = rng.uniform(3, 12) / 255
    if mr_like:
        bias = np.exp(0.15 * smooth_field(rng, shape, (8, 30, 30))).astype(np.float32)
        image = np.sqrt((image * bias + noise * rng.standard_normal(shape)) ** 2
                        + (noise * rng.standard_normal(shape)) ** 2)
    else:
        image = ndimage.gaussian_filter(image, (0, 0.6, 0.6)) + noise * rng.standard_normal(shape)
    label = organ.astype(np.uint8)
    label[lesions] = 2
    return {"image": normalise_percentiles(image.astype(np.float32)), "label": label,
            "noise_std": np.float32(noise), "mr_like": np.bool_(mr_like)}


def synthetic_corpus(task: str = "organ", train_studies: int = 30, test_studies: int = 10, slices: int = 10,
                     size: int = 96, seed: int = 1234) -> Corpus:
    """Training and test patients generated from disjoint seeds (split by subject)."""
    if task not in TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; choose one of {', '.join(TASKS)}")

    def study(index: int, split: str) -> Study:
        data = synthetic_study(seed + index, slices, size)
        label = (data["label"] >= 1) if task == "organ" else (data["label"] == 2)
        return Study(f"synth-{split}-{index:03d}", data["image"], label.astype(np.uint8),
                     list(range(index * slices, (index + 1) * slices)))

    return Corpus(
        name=f"synth-{task}",
        description=(f"synthetic CT/MR-like patients ({task}), {slices} slices of {size}x{size} each, "
                     f"split by patient"),
        train=[study(i, "train") for i in range(train_studies)],
        test=[study(train_studies + i, "test") for i in range(test_studies)],
    )
