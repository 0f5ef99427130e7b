"""Where UMed may perturb, per axial slice: a contour band around the ROI's edge and the interior inside it."""

from typing import Tuple

import numpy as np
from scipy import ndimage
from skimage.morphology import disk


def roi_and_band(roi: np.ndarray, band_width: int) -> np.ndarray:
    """The ROI dilated by a disk of radius band_width within each axial slice: all that UMed may change.

    roi is one slice (H, W) or a stack (..., H, W); the disk gets unit leading axes so slices never mix.
    """
    footprint = disk(band_width)
    return ndimage.binary_dilation(roi, structure=footprint.reshape((1,) * (roi.ndim - 2) + footprint.shape))


def band_and_interior(roi: np.ndarray, band_width: int,
                      whole_roi_inside: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Band = dilate(ROI) - erode(ROI) with a disk of radius band_width; interior = ROI minus band.

    whole_roi_inside: the band keeps only its outer half and the interior is the whole ROI, so that the texture
    part reaches the contour itself (the "carrier" design: the voxels next to the contour decide segmentation).
    """
    inner = roi if whole_roi_inside else ndimage.binary_erosion(roi, structure=disk(band_width), border_value=0)
    band = roi_and_band(roi, band_width) & ~inner
    return band, roi & ~band
