"""Where a perturbation may go: the ROI dilated by the band width, per slice (the engine's ROI + contour band)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.morphology import disk


def roi_and_band(labels: np.ndarray, band_width: int) -> np.ndarray:
    """labels (N, H, W) -> bool (N, H, W): each slice's foreground dilated by a disk of radius band_width."""
    footprint = disk(band_width)
    return np.stack([ndimage.binary_dilation(s > 0, structure=footprint) for s in labels])
