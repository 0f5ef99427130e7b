"""A DICOM Segmentation (SEG) as a label image in physical space, read with highdicom.

The chosen segments become label values 1..n in the order chosen (a later segment wins where they overlap).
The image is returned with its own geometry, slices ordered like the reference image's, so that label_io can
pad a SEG that stores only the slices holding a segment, or refuse one on another region of space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ...errors import InputError


def segment_names(dataset) -> Dict[int, str]:
    """Segment number -> label (name), in file order."""
    return {int(item.SegmentNumber): str(item.get("SegmentLabel", item.SegmentNumber))
            for item in dataset.get("SegmentSequence", [])}


def seg_image(dataset, path: Path, numbers: Sequence[int], normal: np.ndarray) -> Tuple[sitk.Image, List[str]]:
    """The chosen segments as one label image (values 1..n) with the SEG's geometry; slices along `normal`."""
    try:
        import highdicom
    except ImportError as error:  # e.g. in 3D Slicer's Python, whose pydicom 2.4 today's highdicom does not take
        raise InputError(f"reading the DICOM SEG {str(path)!r} needs highdicom with pydicom 3 ({error}); run "
                         "umed-protect in its own environment, or load the SEG through 3D Slicer's DICOM module and "
                         "protect it from the UMed Protect panel") from None
    try:
        segmentation = highdicom.seg.Segmentation.from_dataset(dataset, copy=False)
    except Exception as error:  # highdicom raises ValueError, AttributeError or KeyError for a malformed SEG
        raise InputError(f"label {str(path)!r} is not a readable DICOM SEG ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''})") from None
    warnings: List[str] = []
    options = dict(segment_numbers=list(numbers), combine_segments=True, relabel=True, dtype=np.uint16)
    try:
        try:
            volume = segmentation.get_volume(**options)
        except RuntimeError as error:
            if "overlap" not in str(error).lower():
                raise
            volume = segmentation.get_volume(skip_overlap_checks=True, **options)
            warnings.append(f"segments of {path.name!r} overlap; each overlapping voxel got the label of the last "
                            "segment chosen")
    except (ValueError, RuntimeError) as error:
        raise InputError(f"label {str(path)!r} is not a regular 3D segmentation that highdicom can place in space "
                         f"({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    array, affine = np.asarray(volume.array), np.asarray(volume.affine, float)
    if array.ndim != 3:
        raise InputError(f"label {str(path)!r} has {array.ndim} dimensions after reading; give a 3D SEG")
    if float(affine[:3, 0] @ normal) < 0:  # slices stored in the opposite order to the image's
        array = array[::-1]
        affine[:3, 3] += affine[:3, 0] * (array.shape[0] - 1)
        affine[:3, 0] *= -1
    # highdicom's array axes are (slice, row, column); ITK's index is (column, row, slice).
    columns = affine[:3, [2, 1, 0]]
    spacing = np.linalg.norm(columns, axis=0)
    if np.any(spacing == 0):
        raise InputError(f"label {str(path)!r} has a degenerate voxel size")
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in affine[:3, 3]])
    image.SetDirection([float(v) for v in (columns / spacing).ravel()])
    return image, warnings
