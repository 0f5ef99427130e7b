"""Synthetic faint lesions: one contrast for every lesion, noise as strong as the budget, so the anatomy is hard.

Slices of 48x48: a flat organ (0.45 plus a smooth texture of 2/255) with 1-2 lesions of contrast multiple x
epsilon (hypo or hyper), Gaussian noise of std epsilon. Unlike `synth-contrast`, every training lesion is equally
faint: no easy example teaches a victim the anatomy. This is the regime in which the quiet design was measured to
protect (README, "Does it protect?"). The intensity range is not pinned, so give the engine its budget in the
images' units (`epsilon_unit="units"`); that is why they are not one of the harness's corpora, whose budgets are
fractions of each study's range (the benchmark and the quiet design's test use them directly).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

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

