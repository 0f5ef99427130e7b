"""The budget in the volume's own units (e.g. HU), shown next to the 1/255 steps before a run."""

from __future__ import annotations

import numpy as np

# The engine scales intensities between these percentiles of the whole volume (ProtectSettings.percentiles).
ENGINE_PERCENTILES = (0.5, 99.5)
# Enough voxels for stable percentiles while keeping the panel responsive on 500-slice CTs.
_SAMPLE_VOXELS = 2_000_000


def intensitySpan(array: np.ndarray, percentiles: tuple = ENGINE_PERCENTILES) -> float:
    """High minus low percentile of the volume (full range when they coincide), as the engine computes it."""
    flat = array.ravel()
    if flat.size > _SAMPLE_VOXELS:
        flat = flat[:: flat.size // _SAMPLE_VOXELS + 1]
    low, high = (float(v) for v in np.percentile(flat, percentiles))
    if high <= low:
        low, high = float(flat.min()), float(flat.max())
    return max(high - low, 0.0)


def nativeBudget(steps: int, span: float) -> float:
    """steps/255 of the intensity span: the largest change a voxel may get, in native units."""
    return float(steps) / 255.0 * float(span)


def describeBudget(steps: int, span: float, unit: str = "") -> str:
    """The budget in native units for the panel, e.g. "about 23.5 HU"."""
    if span <= 0:
        return "none: the volume is constant, there is nothing to protect"
    return f"about {nativeBudget(steps, span):.4g} {unit or 'intensity units'}"
