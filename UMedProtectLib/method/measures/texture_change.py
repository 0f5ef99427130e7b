"""How much a perturbation changes the image's local noise in the ROI and in the band around it.

PSNR does not see a design that removes noise: a denoised ROI inside a speckled rim is a texture a reader may see
even at 45 dB. The local noise is the standard deviation of the high-pass residual (the slice minus its Gaussian
blur of sigma 1 px), pooled over the region's voxels of every axial slice; the ratio after / before is 1 for a
perturbation that leaves the texture as it was, below 1 for a smoother region and above 1 for a rougher one.
"""

from __future__ import annotations

from typing import Dict, List

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

# A region whose local noise changes by more than this factor either way is warned about as visibly smoother or
# rougher. Chosen, not measured on readers: a 25 % change of a noise level's standard deviation is about where
# noise-level discrimination thresholds in the perception literature lie (docs/method.md states the choice).
VISIBLE_TEXTURE_FACTOR = 1.25


def _high_pass(volume: np.ndarray) -> np.ndarray:
    volume = volume.astype(np.float64)
    return volume - ndimage.gaussian_filter(volume, sigma=(0, 1.0, 1.0))


def _rim(roi: np.ndarray, band_width: int) -> np.ndarray:
    """The band of `band_width` voxels on both sides of the ROI's edge, per axial slice."""
    footprint = disk(band_width)[None]
    return ndimage.binary_dilation(roi, structure=footprint) & ~ndimage.binary_erosion(roi, structure=footprint)


def texture_ratios(image: np.ndarray, protected: np.ndarray, roi: np.ndarray, band_width: int) -> Dict[str, float]:
    """Local noise after / before in the ROI's interior and in its band (NaN where a region is empty or flat)."""
    roi = roi > 0
    rim = _rim(roi, band_width)
    before, after = _high_pass(image), _high_pass(protected)
    out = {}
    for name, region in (("roi_texture_ratio", roi & ~rim), ("band_texture_ratio", rim)):
        reference = float(before[region].std()) if region.any() else 0.0
        out[name] = float(after[region].std()) / reference if reference > 0 else float("nan")
    return out


def texture_warnings(ratios: Dict[str, float]) -> List[str]:
    """One warning per region whose local noise changed visibly (outside 1 / VISIBLE_TEXTURE_FACTOR..factor)."""
    warnings = []
    for key, where in (("roi_texture_ratio", "ROI"), ("band_texture_ratio", "band around the ROI's edge")):
        ratio = ratios.get(key, float("nan"))
        if np.isfinite(ratio) and not 1 / VISIBLE_TEXTURE_FACTOR <= ratio <= VISIBLE_TEXTURE_FACTOR:
            look = "smoother" if ratio < 1 else "rougher"
            warnings.append(f"the {where} may look visibly {look} than before: its local noise is x{ratio:.2f} "
                            f"(outside x{1 / VISIBLE_TEXTURE_FACTOR:.2f}-x{VISIBLE_TEXTURE_FACTOR:.2f})")
    return warnings
