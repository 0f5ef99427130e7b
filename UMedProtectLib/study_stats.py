"""How strong a budget is for this study: epsilon against the ROI's own contrast and the image noise."""

from typing import Dict, List

import numpy as np
from scipy import ndimage

from .windows import Window

# Measured (shared/research/protection-feasibility.md): at epsilon / contrast of about 0.13 nothing protected.
WEAK_BUDGET_RATIO = 0.25
# README "Does it protect?": at 16/255 the perturbation was measured at PSNR 32-33 dB, i.e. visible.
VISIBLE_EPSILON = 16 / 255
# Above this fraction of the volume the "region" is no longer a region: a label that covers (nearly) everything.
WIDE_REGION_FRACTION = 0.5
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)


def noise_std(image: np.ndarray) -> float:
    """Immerkaer's fast estimate of white-noise standard deviation of a 2D image."""
    if min(image.shape) < 3:
        return 0.0
    response = ndimage.convolve(image.astype(np.float32), _NOISE_KERNEL, mode="reflect")[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0)


def budget_strength(windows: List[Window], epsilon: float) -> Dict:
    """ROI contrast (|mean inside - mean of the ring just outside|), noise, and epsilon relative to both."""
    inside = np.concatenate([w.image[w.classes > 0] for w in windows])
    ring = np.concatenate([w.image[w.band & (w.classes == 0)] for w in windows])
    contrast = abs(float(inside.mean()) - float(ring.mean())) if ring.size else 0.0
    noise = float(np.median([noise_std(w.image) for w in windows]))
    stats = {
        "roi_contrast": contrast,
        "noise_std": noise,
        "epsilon_to_contrast": epsilon / contrast if contrast > 0 else None,
        "epsilon_to_noise": epsilon / noise if noise > 0 else None,
        "warnings": [],
    }
    if stats["epsilon_to_contrast"] is not None and stats["epsilon_to_contrast"] < WEAK_BUDGET_RATIO:
        stats["warnings"].append(
            f"epsilon is {stats['epsilon_to_contrast']:.2f} of the ROI's contrast with its surroundings; "
            f"below {WEAK_BUDGET_RATIO} protection was measured to be weak: consider a larger epsilon")
    return stats


def visibility_warnings(epsilon: float, region_fraction: float) -> List[str]:
    """Warnings for a budget above what was measured to be visible, and for a region that is most of the volume."""
    warnings = []
    if epsilon > VISIBLE_EPSILON:
        warnings.append(f"epsilon {epsilon * 255:.3g}/255 is above 16/255, where the change was measured to be "
                        "visible (PSNR 32-33 dB); check the preview before sharing")
    if region_fraction > WIDE_REGION_FRACTION:
        warnings.append(f"the region to change (ROI + contour band) is {100 * region_fraction:.0f}% of the volume: "
                        "the label covers (nearly) the whole image, so this is no longer a change confined to a "
                        "region; check the label map and --labels")
    return warnings
