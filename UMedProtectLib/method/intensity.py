"""Robust intensity scaling, so that epsilon means the same on CT, MR and 8-bit images, and back to native units."""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..errors import InputError

# The networks and the SSIM see (value - low) / span in float32: a difference of two values beyond float32's range is
# an infinity there (and NaN after the division), and a span below its smallest normal number rounds to zero.
LARGEST_VALUE = float(np.finfo(np.float32).max) / 2
SMALLEST_SPAN = float(np.finfo(np.float32).tiny)


def robust_range(values: np.ndarray, percentiles: Tuple[float, float]) -> Tuple[float, float]:
    """The low and high percentiles of the values; their full range when those coincide (mostly-constant images)."""
    low, high = (float(v) for v in np.percentile(values, percentiles))
    if high <= low:
        low, high = float(values.min()), float(values.max())
    return low, high


@dataclass(frozen=True)
class IntensityScale:
    """Maps native intensities to [0, 1] with the volume's low and high percentiles."""

    low: float
    high: float

    @classmethod
    def from_image(cls, image: np.ndarray, percentiles: Tuple[float, float]) -> "IntensityScale":
        """The robust range of the whole volume; refuses a constant one and one the arithmetic cannot represent."""
        largest = max(abs(float(image.min())), abs(float(image.max())))
        if largest > LARGEST_VALUE:
            raise InputError(f"the image has values of magnitude {largest:.3g}; the engine computes in 32-bit floating "
                             f"point and accepts values within +-{LARGEST_VALUE:.3g}; rescale the image first")
        low, high = robust_range(image, percentiles)
        if high <= low:
            raise InputError(f"the image is constant ({low:g} everywhere); there is nothing to protect")
        if high - low < SMALLEST_SPAN:
            raise InputError(f"the image's values span only {high - low:.3g} ({low:.3g} to {high:.3g}); the engine "
                             f"computes in 32-bit floating point and accepts a span of at least {SMALLEST_SPAN:.3g}; "
                             "rescale the image first")
        return cls(low, high)

    @property
    def span(self) -> float:
        """Native units per normalised unit: epsilon * span is the budget in native units."""
        return self.high - self.low

    def normalise(self, values: np.ndarray) -> np.ndarray:
        """Native -> [0, 1] (values beyond the percentiles are clipped, as the networks see them)."""
        return np.clip((values.astype(np.float32) - self.low) / self.span, 0.0, 1.0)


def value_step(dtype: np.dtype, stored_step: Optional[float] = None) -> float:
    """The grid the written values lie on: the stored representation's step when the output has one (a DICOM series'
    rescale slope), else 1 for whole numbers and 0 (no grid) for reals."""
    if stored_step:
        return float(stored_step)
    return 1.0 if np.issubdtype(dtype, np.integer) else 0.0


def smallest_change(dtype: np.dtype, scale: IntensityScale, step: float) -> float:
    """The smallest change a voxel can take across the robust range: one `step` of its grid, else (reals) one step of
    the floating-point grid at the range's largest magnitude."""
    if step:
        return step
    return float(np.spacing(np.asarray(max(abs(scale.low), abs(scale.high)), dtype=dtype)))


def add_perturbation(values: np.ndarray, delta: np.ndarray, scale: IntensityScale,
                     native_range: Tuple[float, float], limit: float, step: float) -> np.ndarray:
    """values + delta (normalised) in native units, kept in the image's range and dtype, in whole `step`s when the
    values lie on a grid (value_step), never over `limit` (the budget in native units)."""
    # delta is float32: its rounding alone can step over a float64 budget by about 1e-7 of it.
    shift = np.clip(delta.astype(np.float64) * scale.span, -limit, limit)
    if step:
        # Truncating towards zero (not rounding) keeps |shift| within the budget; whole steps are what the output
        # stores (an integer type, a DICOM series' stored values), so the report describes the written values.
        shift = np.trunc(shift / step) * step
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(values.dtype)
        native_range = (max(native_range[0], info.min), min(native_range[1], info.max))
    out = np.clip(values.astype(np.float64) + shift, *native_range).astype(values.dtype)
    if np.issubdtype(values.dtype, np.floating):
        # Rounding the sum to the image's type may step over the budget by part of a grid step: one step back.
        over = np.abs(out.astype(np.float64) - values.astype(np.float64)) > limit
        out[over] = np.nextafter(out[over], values[over])
    return out
