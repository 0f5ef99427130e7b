"""Where UMed may perturb, per axial slice: a contour band around the ROI's edge and the interior inside it."""

from typing import Tuple

import numpy as np
from scipy import ndimage
from skimage.morphology import disk


def band_and_interior(roi: np.ndarray, band_width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Band = dilate(ROI) - erode(ROI) with a disk of radius band_width; interior = ROI minus band."""
    footprint = disk(band_width)
    dilated = ndimage.binary_dilation(roi, structure=footprint)
    eroded = ndimage.binary_erosion(roi, structure=footprint, border_value=0)
    band = dilated & ~eroded
    return band, roi & ~band
