"""How a study is read: whether it is a CT in HU, the ROI's median value and the image's smallest step.

The rule (docs/visibility.md): an image is a CT in HU when at least AIR_SHARE of its voxels lie at air, AIR_HU
(-1100 to -900 HU), which no MR, PET or microscopy image in its own units does; `--modality ct` or `other` overrides
it (a CT cropped inside the body has no air; a CT stored without its rescale is not in HU and must not count).
"""

from typing import Optional

import numpy as np

from ..budget import StudyReading
from .intensity import value_step

AIR_HU = (-1100.0, -900.0)
AIR_SHARE = 0.01


def is_ct_in_hu(image: np.ndarray) -> bool:
    """Whether enough of the image lies at air's HU for it to be a CT in HU."""
    at_air = np.count_nonzero((image >= AIR_HU[0]) & (image <= AIR_HU[1]))
    return at_air >= AIR_SHARE * image.size


def read_study(image: np.ndarray, roi: np.ndarray, modality: str = "auto",
               stored_step: Optional[float] = None) -> StudyReading:
    """The study's reading: CT or not (by `modality`, or by the rule when "auto"), the ROI's median, and the grid
    its written values lie on (intensity.value_step; `stored_step`, a DICOM series' rescale slope)."""
    ct = is_ct_in_hu(image) if modality == "auto" else modality == "ct"
    step = value_step(image.dtype, stored_step)
    return StudyReading(ct=bool(ct), roi_median=float(np.median(image[roi])) if roi.any() else 0.0, step=step)
