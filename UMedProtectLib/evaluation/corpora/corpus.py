"""A segmentation corpus as the harness sees it: training and test studies of 2D axial slices."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ...method.intensity import IntensityScale
from ...settings import ProtectSettings


@dataclass
class Study:
    """One study: a stack of axial slices (z, y, x) in [0, 1] and its binary label (0 background, 1 target)."""

    name: str
    image: np.ndarray  # float32, normalised to [0, 1]
    label: np.ndarray  # uint8, 0 or 1
    # Slice indices in the source volume, kept so that tests can check that no slab is shared across the split.
    source_slices: List[int] = field(default_factory=list)
    group: str = ""  # a subset the harness scores on its own, e.g. a synthetic lesion's contrast ("2x small")


@dataclass
class Corpus:
    """A named task with its training and test studies; every slice of a corpus has the same height and width."""

    name: str
    description: str
    train: List[Study]
    test: List[Study]

    def slices(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """All slices of a split stacked: images (N, H, W) float32 and labels (N, H, W) int64."""
        studies = self.train if split == "train" else self.test
        images = np.concatenate([s.image for s in studies]).astype(np.float32)
        labels = np.concatenate([s.label for s in studies]).astype(np.int64)
        return images, labels

    def summary(self) -> Dict:
        """Sizes for the report."""
        train_images, train_labels = self.slices("train")
        test_images, _ = self.slices("test")
        return {
            "name": self.name,
            "description": self.description,
            "train_studies": len(self.train),
            "test_studies": len(self.test),
            "train_slices": int(train_images.shape[0]),
            "test_slices": int(test_images.shape[0]),
            "slice_shape": list(train_images.shape[1:]),
            "foreground_fraction": float(train_labels.mean()),
        }


def normalise_percentiles(volume: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] with the engine's own scaler and default percentiles, so that epsilon means the same to both."""
    return IntensityScale.from_image(volume, ProtectSettings().percentiles).normalise(volume)


def centre_crop_or_pad(volume: np.ndarray, height: int, width: int) -> np.ndarray:
    """Crop or zero-pad the last two axes around the centre to (height, width)."""
    out = volume
    for axis, size in ((-2, height), (-1, width)):
        current = out.shape[axis]
        if current > size:
            start = (current - size) // 2
            out = np.take(out, range(start, start + size), axis=axis)
        elif current < size:
            before = (size - current) // 2
            pad = [(0, 0)] * out.ndim
            pad[axis] = (before, size - current - before)
            out = np.pad(out, pad)
    return out
