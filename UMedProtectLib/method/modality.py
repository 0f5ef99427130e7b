"""How a study is read: whether it is a CT in HU (and which rule said so), the ROI's median value and the image's
smallest step.

The rules, first that applies (docs/visibility.md): `--modality ct` or `other` as given; else the study's own header
when it says what the study is (a DICOM series' Modality and rescale, files/header_modality.py), since a CT cropped
inside the body or sliced through it keeps its header but loses its air; else the air rule: a CT in HU when at least
AIR_SHARE of its voxels lie at air, AIR_HU (-1100 to -900 HU), which no MR, PET or microscopy image in its own units
does.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from ..budget import StudyReading
from .intensity import value_step

AIR_HU = (-1100.0, -900.0)
AIR_SHARE = 0.01


@dataclass(frozen=True)
class HeaderModality:
    """What a study's own header says: a CT in HU or not, and the header's words that say so."""

    ct: bool
    says: str  # e.g. "DICOM Modality CT with a rescale to HU (intercept -1024, slope 1)"


def air_share(image: np.ndarray) -> float:
    """The share of the image's voxels at air's HU."""
    return float(np.count_nonzero((image >= AIR_HU[0]) & (image <= AIR_HU[1]))) / max(image.size, 1)


def is_ct_in_hu(image: np.ndarray) -> bool:
    """Whether enough of the image lies at air's HU for it to be a CT in HU."""
    return air_share(image) >= AIR_SHARE


def _told(image: np.ndarray, modality: str, header: Optional[HeaderModality]) -> Tuple[bool, str, str]:
    """(a CT in HU or not, the rule that told it, why), as the module's docstring orders the rules."""
    if modality != "auto":
        return modality == "ct", "given", f"--modality {modality} was given"
    if header is not None:
        return header.ct, "header", header.says
    share = air_share(image)
    ct = share >= AIR_SHARE
    reason = (f"{100 * share:.1f} % of its voxels lie at air ({AIR_HU[0]:g} to {AIR_HU[1]:g} HU), "
              f"{'at least' if ct else 'less than'} the {100 * AIR_SHARE:g} % of a CT in HU")
    if not ct:
        # The one case the rule gets wrong, and the way out: said where the user reads the result.
        reason += ", and no header says what the study is (if it is a CT cropped inside the body: give --modality ct)"
    return ct, "air", reason


def read_study(image: np.ndarray, roi: np.ndarray, modality: str = "auto", header: Optional[HeaderModality] = None,
               stored_step: Optional[float] = None) -> StudyReading:
    """The study's reading: CT or not (by `modality`, else by `header`, else by the air rule) and why, the ROI's
    median, and the grid its written values lie on (intensity.value_step; `stored_step`, a DICOM series' rescale
    slope)."""
    ct, rule, reason = _told(image, modality, header)
    step = value_step(image.dtype, stored_step)
    return StudyReading(ct=ct, roi_median=float(np.median(image[roi])) if roi.any() else 0.0, step=step, rule=rule,
                        reason=reason)
