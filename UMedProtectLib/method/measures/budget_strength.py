"""How strong a budget is for this study: epsilon against the ROI's own contrast and the image noise."""

from typing import Dict, List, Mapping, Sequence

import numpy as np
from scipy import ndimage

from ...budget import GREY_LEVELS, StudyReading
from ..windows import Window

# Measured (docs/results/contrast-unet.md, one seed): a U-Net trained on lesions protected at epsilon / contrast
# 0.25 and 0.125 (4x and 8x epsilon) found them as well as its clean twin; at 0.5 partly, at 1 not at all.
WEAK_BUDGET_RATIO = 0.25
# At 16/255 the perturbation was measured visible (docs/results/nuclei-gpu.md).
VISIBLE_EPSILON = 16 / 255
# Above this fraction of the volume the "region" is no longer a region: a label that covers (nearly) everything.
WIDE_REGION_FRACTION = 0.5
# A perturbation with no systematic part averages about 0 over the ROI (uniform noise of +-budget over 100 voxels:
# a standard deviation of 0.06 budget); a mean beyond this share of the budget is a darkening or a brightening.
MEAN_SHIFT_LIMIT = 0.1
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
                        "visible (docs/results/nuclei-gpu.md); check the preview before sharing")
    if region_fraction > WIDE_REGION_FRACTION:
        warnings.append(f"the region to change (ROI + contour band) is {100 * region_fraction:.0f}% of the volume: "
                        "the label covers (nearly) the whole image, so this is no longer a change confined to a "
                        "region; check the label map and --labels")
    return warnings


def window_warnings(seen: Sequence[Mapping], reading: StudyReading) -> List[str]:
    """A warning for each standard window (the report's `standard_windows`) that shows a change of more than one grey
    level of an 8-bit display, naming the window; with the reason when the image's own step is already more."""
    warnings = []
    for entry in seen:
        levels = entry["max_change_of_window"] * GREY_LEVELS
        if levels <= 1 + 1e-9:
            continue
        window = entry["window"]
        text = (f"in the {window['name']} window (L{window['level']:.4g} W{window['width']:.4g}) the change reaches "
                f"{levels:.2f} grey levels of an 8-bit display ({100 * entry['roi_visible_fraction']:.1f}% of ROI "
                "voxels change by more than one): visible to a reader who uses that window")
        if reading.step * GREY_LEVELS > window["width"]:
            text += (f"; this integer image cannot change by less than {reading.step:g} HU, "
                     f"{reading.step * GREY_LEVELS / window['width']:.2f} grey levels there")
        warnings.append(text)
    return warnings


def mean_shift_warnings(shift: Mapping, design: str) -> List[str]:
    """A warning when the ROI's mean moves by more than MEAN_SHIFT_LIMIT of the budget (docs/visibility.md, why)."""
    if abs(shift["of_budget"]) <= MEAN_SHIFT_LIMIT:
        return []
    way = "darker" if shift["native"] < 0 else "brighter"
    return [f"the {design} design made the ROI {way} on average: its mean moved by {shift['native']:+.3g} native units "
            f"({shift['of_budget']:+.2f} of the budget, {shift['grey_levels']:+.2f} grey levels of the "
            f"{shift['window']} window; {100 * shift['down_fraction']:.0f}% of ROI voxels went down, "
            f"{100 * shift['up_fraction']:.0f}% up), above {MEAN_SHIFT_LIMIT} of the budget: a measurement of the "
            "ROI's mean sees it (docs/visibility.md)"]
