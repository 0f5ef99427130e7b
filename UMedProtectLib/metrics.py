"""How visible the protection is: PSNR, SSIM, L-infinity and the fraction of voxels changed."""

import math
from typing import Dict, Optional, Sequence

import numpy as np
from skimage.metrics import structural_similarity

from .intensity import IntensityScale


def psnr_db(difference: np.ndarray, span: float) -> Optional[float]:
    """PSNR of a difference in native units against a peak of `span`; None when nothing changed."""
    if difference.size == 0:
        return None
    flat = difference.reshape(-1)
    # Summed in chunks: a float64 square of a whole CT's difference would double the run's peak memory.
    total = sum(float(np.square(flat[i:i + 2**22], dtype=np.float64).sum()) for i in range(0, flat.size, 2**22))
    mse = total / flat.size / span ** 2
    return None if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def slice_ssim(original: np.ndarray, protected: np.ndarray, scale: IntensityScale) -> float:
    """SSIM of one axial slice on the normalised scale (data range 1)."""
    side = min(original.shape)
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        return 1.0 if np.array_equal(original, protected) else 0.0
    a = (original.astype(np.float32) - scale.low) / scale.span
    b = (protected.astype(np.float32) - scale.low) / scale.span
    return float(structural_similarity(a, b, data_range=1.0, win_size=window))


def protection_metrics(image: np.ndarray, protected: np.ndarray, difference: np.ndarray, region: np.ndarray,
                       scale: IntensityScale, changed_slices: Sequence[int]) -> Dict:
    """All image-quality figures of the report; slices outside `changed_slices` are identical by construction."""
    ssims = [slice_ssim(image[z], protected[z], scale) for z in changed_slices]
    linf_native = max(abs(float(difference.max())), abs(float(difference.min()))) if difference.size else 0.0
    return {
        "psnr_db": psnr_db(difference, scale.span),
        "psnr_roi_db": psnr_db(difference[region], scale.span),
        "ssim": (sum(ssims) + image.shape[0] - len(ssims)) / image.shape[0],
        "ssim_roi_slices": float(np.mean(ssims)) if ssims else 1.0,
        "linf": linf_native / scale.span,
        "linf_native": linf_native,
        "changed_fraction": float(np.count_nonzero(difference)) / difference.size,
        "changed_voxels": int(np.count_nonzero(difference)),
        "roi_band_voxels": int(np.count_nonzero(region)),
    }
