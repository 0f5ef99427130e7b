"""What a mark is: a keyed in-plane pattern in [-1, 1] that the owner adds inside the ROI, scaled to the budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Tuple

import numpy as np

# The pattern is drawn on a periodic tile and repeated over the slice: stationary, so a convolutional network can
# pick it up anywhere, and one key is one pattern (each study shifts the tile by its own secret offset, embed.py).
TILE = 64


@dataclass(frozen=True)
class Mark:
    """A named mark; `tile(seed)` draws its periodic (TILE, TILE) pattern in [-1, 1] from a key-derived seed."""

    name: str
    description: str
    tile: Callable[[int], np.ndarray]

    def pattern(self, seed: int, shape: Tuple[int, int], offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
        """The pattern over a slice of `shape` (rows, columns), float32 in [-1, 1], its tile shifted by `offset`."""
        tile = np.roll(self.tile(seed), offset, axis=(0, 1))
        reps = (-(-shape[0] // TILE), -(-shape[1] // TILE))
        return np.tile(tile, reps)[:shape[0], :shape[1]].astype(np.float32)


def band_limited(spectrum: np.ndarray) -> np.ndarray:
    """A real periodic tile from a complex half-spectrum (TILE, TILE // 2 + 1), scaled so that its large values
    reach the budget: divided by 1.5 standard deviations and clipped to [-1, 1] (most of the tile near the bound
    carries more of the pattern per unit of L-infinity than a peak-normalised one)."""
    tile = np.fft.irfft2(spectrum, s=(TILE, TILE))
    tile /= 1.5 * tile.std() + 1e-12
    return np.clip(tile, -1.0, 1.0)


def frequencies() -> Tuple[np.ndarray, np.ndarray]:
    """The tile's frequency grid in cycles per voxel, rows (TILE, 1) and columns (1, TILE // 2 + 1)."""
    return np.fft.fftfreq(TILE)[:, None], np.fft.rfftfreq(TILE)[None, :]
