"""Synthetic faint lesions: one contrast for every lesion, noise as strong as the budget, so the anatomy is hard.

Slices of 48x48: a flat organ (0.45 plus a smooth texture of 2/255) with 1-2 lesions of contrast multiple x
epsilon (hypo or hyper), Gaussian noise of std epsilon. Unlike `synth-contrast`, every training lesion is equally
faint: no easy example teaches a victim the anatomy. This is the regime in which the designs were measured to take
effect (docs/results/faint-lesions.md). The slices' own range is not pinned, so the benchmark gives the engine its
budget in the images' units (`epsilon_unit="units"`); the harness's corpus `synth-faint` pins it (faint_corpus).
"""

from __future__ import annotations

from typing import List

import numpy as np
from scipy import ndimage

from .corpus import Corpus, Study

SIZE = 48


def faint_slices(count: int, multiple: float, epsilon: float, seed: int):
    """Slices (N, 48, 48) in [0, 1] with lesions of contrast multiple x epsilon, and their labels (uint8)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    yy, xx = np.mgrid[:SIZE, :SIZE]
    for _ in range(count):
        texture = ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 2.0)
        image = 0.45 + 0.02 * texture / (texture.std() + 1e-8)
        label = np.zeros((SIZE, SIZE), np.uint8)
        for _ in range(rng.integers(1, 3)):
            radius = rng.uniform(4, 11)
            cy, cx = rng.uniform(radius + 2, SIZE - radius - 2, 2)
            rough = ndimage.gaussian_filter(rng.standard_normal((SIZE, SIZE)), 3) * 4
            lesion = ((yy - cy) ** 2 + (xx - cx) ** 2) ** 0.5 + rough < radius
            label[lesion] = 1
            image[lesion] += rng.choice([-1, 1]) * multiple * epsilon
        images.append(np.clip(image + epsilon * rng.standard_normal((SIZE, SIZE)), 0, 1).astype(np.float32))
        labels.append(label)
    return np.stack(images), np.stack(labels)



def faint_corpus(multiple: float = 2.5, epsilon: float = 4 / 255, train_slices: int = 160,
                 test_slices: int = 60) -> Corpus:
    """Faint lesions as the harness's corpus `synth-faint`: the benchmark's slices (training from seed 1, test from
    seed 2) in studies of 10, with every slice's first row set to 0 and its last to 1.

    The two rows (4 % of a slice, far from the lesions, which keep 2 px from the edge) make the 0.5th and 99.5th
    percentiles 0 and 1, so the engine's normalisation leaves the images unchanged and a budget given as a fraction
    of the range, as the harness gives it, is the same budget in the images' units, as `synth-contrast`'s skin rim
    does.
    """

    def studies(split: str, count: int, seed: int) -> List[Study]:
        images, labels = faint_slices(count, multiple, epsilon, seed)
        images[:, 0], images[:, -1] = 0.0, 1.0
        return [Study(f"faint-{split}-{start // 10:03d}", images[start:start + 10], labels[start:start + 10],
                      list(range(start, min(start + 10, count)))) for start in range(0, count, 10)]

    return Corpus(name="synth-faint",
                  description=(f"synthetic faint lesions of contrast {multiple:g}x epsilon ({epsilon * 255:g}/255) on "
                               f"noise of std epsilon, {SIZE}x{SIZE} slices, range pinned at 0 and 1 by two rows"),
                  train=studies("train", train_slices, 1), test=studies("test", test_slices, 2))
