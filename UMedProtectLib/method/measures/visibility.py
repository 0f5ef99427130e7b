"""How visible the protection is: PSNR, SSIM, L-infinity and the fraction of voxels changed, on the robust range
and as displayed in a reading window."""

import math
from typing import Dict, Optional, Sequence

import numpy as np
from skimage.metrics import structural_similarity

from ...budget import GREY_LEVEL, ReadingWindow
from ..intensity import IntensityScale


def psnr_db(difference: np.ndarray, span: float) -> Optional[float]:
    """PSNR of a difference in native units against a peak of `span`; None when nothing changed."""
    if difference.size == 0:
        return None
    flat = difference.reshape(-1)
    # Summed in chunks: a float64 square of a whole CT's difference would double the run's peak memory.
    total = sum(float(np.square(flat[i:i + 2**22], dtype=np.float64).sum()) for i in range(0, flat.size, 2**22))
    mse = total / flat.size / span ** 2
    return None if mse == 0.0 else 10.0 * math.log10(1.0 / mse)


def unit_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """scikit-image SSIM of two 2D images on a [0, 1] scale (data range 1), the window shrunk for tiny images."""
    side = min(a.shape)
    window = min(7, side if side % 2 else side - 1)
    if window < 3:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(structural_similarity(a, b, data_range=1.0, win_size=window))


def slice_ssim(original: np.ndarray, protected: np.ndarray, scale: IntensityScale) -> float:
    """SSIM of one axial slice on the normalised scale (data range 1)."""
    return unit_ssim((original.astype(np.float32) - scale.low) / scale.span,
                     (protected.astype(np.float32) - scale.low) / scale.span)


def windowed(values: np.ndarray, window: ReadingWindow) -> np.ndarray:
    """Values as a display of the window shows them: 0 (black) to 1 (white), clipped beyond."""
    return np.clip((values.astype(np.float64) - window.low) / window.width, 0.0, 1.0)


def visibility(image: np.ndarray, protected: np.ndarray, roi: np.ndarray, window: ReadingWindow,
               changed_slices: Sequence[int]) -> Dict:
    """PSNR, SSIM and the change as displayed in `window`; slices outside `changed_slices` must be identical.

    Changes are of the displayed values (a change where both values lie beyond the window is invisible), as a share
    of the window. The 99th percentile and the visible share are over the ROI's voxels; "visible" means more than
    one grey level of an 8-bit display of the window.
    """
    squared, largest, ssims, roi_changes = 0.0, 0.0, [], []
    for z in changed_slices:
        before, after = windowed(image[z], window), windowed(protected[z], window)
        change = np.abs(after - before)
        squared += float(np.sum(np.square(change)))
        largest = max(largest, float(change.max()))
        ssims.append(unit_ssim(before, after))
        roi_changes.append(change[roi[z]])
    changes = np.concatenate(roi_changes) if roi_changes else np.zeros(0)
    mse = squared / image.size
    return {
        "window": window.to_dict(),
        "psnr_db": None if mse == 0.0 else 10.0 * math.log10(1.0 / mse),
        "ssim": (sum(ssims) + image.shape[0] - len(ssims)) / image.shape[0],
        "ssim_roi_slices": float(np.mean(ssims)) if ssims else 1.0,
        "max_change_of_window": largest,
        "p99_change_of_window": float(np.percentile(changes, 99)) if changes.size else 0.0,
        # The tolerance keeps a change of exactly one grey level (e.g. 1 HU in a window 255 HU wide) invisible.
        "roi_visible_fraction": float(np.count_nonzero(changes > GREY_LEVEL * (1 + 1e-9))) / max(changes.size, 1),
    }


def mean_shift(difference: np.ndarray, roi: np.ndarray, budget: float, window: ReadingWindow) -> Dict:
    """The mean change inside the ROI (signed, native units), as a share of the budget, of the window and in its grey
    levels, and the shares of ROI voxels that went down and up: a systematic darkening or brightening shows here."""
    inside = difference[roi].astype(np.float64)
    mean = float(inside.mean()) if inside.size else 0.0
    return {"native": mean, "of_budget": mean / budget, "of_window": mean / window.width,
            "grey_levels": mean / window.width / GREY_LEVEL, "window": window.name,
            "down_fraction": float(np.count_nonzero(inside < 0)) / max(inside.size, 1),
            "up_fraction": float(np.count_nonzero(inside > 0)) / max(inside.size, 1)}


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
