"""The keyed grating mark: three plane waves whose orientations, periods and phases the key draws."""

import numpy as np

from .mark import TILE, Mark, band_limited

WAVES = 3
# Whole cycles per tile keep the tile periodic; 5 to 12 cycles are periods of 5.3 to 12.8 voxels.
CYCLES = (5, 12)


def _tile(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    spectrum = np.zeros((TILE, TILE // 2 + 1), complex)
    for _ in range(WAVES):
        # A frequency on the tile's grid, drawn by orientation and period, not on a grid axis.
        while True:
            angle = rng.uniform(0, np.pi)
            cycles = rng.uniform(*CYCLES)
            row, col = int(round(cycles * np.sin(angle))), int(round(cycles * np.cos(angle)))
            if col < 0:
                row, col = -row, -col
            if col > 0 or row > 0:
                break
        spectrum[row % TILE, col] += np.exp(2j * np.pi * rng.uniform())
    return band_limited(spectrum)


GRATING = Mark(
    name="grating",
    description=f"{WAVES} keyed plane waves of {TILE / CYCLES[1]:.1f}-{TILE / CYCLES[0]:.1f} voxels' period "
                "(repeated every 64 voxels, the same on every slice)",
    tile=_tile,
)
