"""Dice, PSNR, SSIM and the perturbation's size relative to the image's own noise and the target's contrast."""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np
from scipy import ndimage

from ..method.measures.budget_strength import noise_std as slice_noise_std
from ..method.measures.visibility import psnr_db, unit_ssim


def dice(prediction: np.ndarray, target: np.ndarray) -> float:
    """Pooled Dice of two binary arrays over all their voxels; 1.0 when both are empty (nothing to find, none found)."""
    prediction, target = prediction.astype(bool), target.astype(bool)
    total = int(prediction.sum()) + int(target.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((prediction & target).sum()) / total


def psnr(original: np.ndarray, perturbed: np.ndarray) -> float:
    """Whole-image PSNR in dB on the [0, 1] scale, by the engine's psnr_db (inf when identical)."""
    value = psnr_db(perturbed.astype(np.float64) - original.astype(np.float64), 1.0)
    return float("inf") if value is None else value


def ssim(original: np.ndarray, perturbed: np.ndarray) -> float:
    """Mean over axial slices of the engine's SSIM on the [0, 1] scale."""
    return float(np.mean([unit_ssim(o, p) for o, p in zip(original, perturbed)]))


def noise_std(image: np.ndarray) -> float:
    """The image's own noise level: the engine's per-slice estimate (Immerkaer 1996), median over the slices."""
    # Slices under 3 pixels have no estimate; left out rather than counted as noiseless.
    values = [slice_noise_std(s) for s in image if min(s.shape) >= 3]
    return float(np.median(values)) if values else 0.0


def roi_contrast(image: np.ndarray, label: np.ndarray, ring: int = 3) -> float:
    """|mean inside the label - mean in a ring of `ring` pixels just outside it|, per slice, averaged."""
    values = []
    for s, m in zip(image, label.astype(bool)):
        if m.sum() == 0:
            continue
        outside = ndimage.binary_dilation(m, iterations=ring) & ~m
        if outside.any():
            values.append(abs(float(s[m].mean()) - float(s[outside].mean())))
    return float(np.mean(values)) if values else float("nan")


def perturbation_stats(original: np.ndarray, perturbed: np.ndarray, label: np.ndarray,
                       window: Tuple[float, float] = (0.5, 1.0)) -> Dict[str, float]:
    """PSNR, SSIM, L-inf, RMS inside the changed region, and both relative to the noise level and ROI contrast;
    then the same visibility figures as the engine's report in the reading window (level, width), by default the
    robust range the corpora are scaled to."""
    from ..budget import ReadingWindow
    from ..method.measures.visibility import visibility

    seen = visibility(original, perturbed, label > 0, ReadingWindow("robust range", *window), range(len(original)))
    difference = perturbed.astype(np.float64) - original.astype(np.float64)
    changed = difference != 0
    noise = noise_std(original)
    contrast = roi_contrast(original, label)
    linf = float(np.abs(difference).max())
    rms_changed = float(np.sqrt(np.mean(difference[changed] ** 2))) if changed.any() else 0.0
    return {
        "psnr_db": psnr(original, perturbed),
        "ssim": ssim(original, perturbed),
        "linf": linf,
        "rms_changed": rms_changed,
        "changed_fraction": float(changed.mean()),
        "noise_std": noise,
        "roi_contrast": contrast,
        "linf_over_noise": linf / noise if noise > 0 else float("inf"),
        "rms_over_noise": rms_changed / noise if noise > 0 else float("inf"),
        "linf_over_contrast": linf / contrast if contrast > 0 else float("inf"),
        "window_psnr_db": float("inf") if seen["psnr_db"] is None else seen["psnr_db"],
        "window_ssim": seen["ssim"],
        "window_max_change": seen["max_change_of_window"],
        "window_p99_change": seen["p99_change_of_window"],
        "roi_visible_fraction": seen["roi_visible_fraction"],
    }
