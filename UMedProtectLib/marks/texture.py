"""The keyed texture mark: white noise from the key, band-limited to periods of 5-16 voxels."""

import numpy as np

from .mark import TILE, Mark, band_limited, frequencies

# Periods a sigma-1 blur, a 3x3 median, JPEG 50 and half resolution all keep most of (their cut-offs lie below
# 4 voxels), and short enough that a 3x3 convolution stack of a few layers sees whole cycles.
SHORTEST_PERIOD = 5.0
LONGEST_PERIOD = 16.0


def _tile(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows, cols = frequencies()
    radius = np.hypot(rows, cols)
    keep = (radius >= 1 / LONGEST_PERIOD) & (radius <= 1 / SHORTEST_PERIOD)
    spectrum = (rng.standard_normal(keep.shape) + 1j * rng.standard_normal(keep.shape)) * keep
    return band_limited(spectrum)


TEXTURE = Mark(
    name="texture",
    description=f"stationary keyed noise, band-limited to periods of {SHORTEST_PERIOD:g}-{LONGEST_PERIOD:g} voxels "
                f"(repeated every {TILE} voxels, the same on every slice)",
    tile=_tile,
)
