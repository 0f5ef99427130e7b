"""An RTSTRUCT's ROIs rasterised onto an image's voxel grid (closed planar contours filled with skimage.draw.polygon).

Each contour's points (patient coordinates, mm) are mapped to continuous voxel indices of the image; a contour
must lie in one image slice. A voxel belongs to a contour when its centre is inside the polygon (skimage's rule);
several contours of one ROI on a slice combine by exclusive or, so an inner contour cuts a hole. The chosen ROIs
become label values 1..n in the order chosen (a later ROI wins where they overlap).
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from ...errors import InputError
from ..image_io import ImageData

# A contour lies in a slice when its points are within this many slice spacings of the slice's centre.
_SLICE_TOLERANCE = 0.25


def roi_names(dataset) -> Dict[int, str]:
    """ROI number -> name, in file order."""
    return {int(item.ROINumber): str(item.get("ROIName", item.ROINumber))
            for item in dataset.get("StructureSetROISequence", [])}


def roi_frames(dataset, numbers: Sequence[int]) -> Dict[int, str]:
    """ROI number -> the frame of reference UID it is defined in (the structure set's when the ROI names none)."""
    default = [str(item.FrameOfReferenceUID) for item in dataset.get("ReferencedFrameOfReferenceSequence", [])
               if "FrameOfReferenceUID" in item]
    frames = {int(item.ROINumber): str(item.get("ReferencedFrameOfReferenceUID", "") or "")
              for item in dataset.get("StructureSetROISequence", [])}
    return {number: frames.get(number) or (default[0] if default else "") for number in numbers}


def _to_index(points: np.ndarray, image: ImageData) -> np.ndarray:
    """Continuous (x, y, z) voxel indices of patient-coordinate points (rows)."""
    direction = np.asarray(image.direction, float).reshape(3, 3)
    spacing = np.asarray(image.spacing_xyz, float)
    return ((points - np.asarray(image.origin, float)) @ direction) / spacing


def rasterise(dataset, path: Path, numbers: Sequence[int], image: ImageData) -> Tuple[np.ndarray, List[str]]:
    """The chosen ROIs as a label array on the image's grid (z, y, x), values 1..n, with warnings."""
    from skimage.draw import polygon

    if len(image.direction) != 9:
        raise InputError(f"an RTSTRUCT needs a 3D image; {str(image.path)!r} is 2D")
    shape = image.array.shape
    labels = np.zeros(shape, dtype=np.uint16)
    contours = {int(item.ReferencedROINumber): item.get("ContourSequence", [])
                for item in dataset.get("ROIContourSequence", [])}
    names = roi_names(dataset)
    warnings: List[str] = []
    skipped = 0
    overlapping = 0
    for value, number in enumerate(numbers, start=1):
        mask = np.zeros(shape, dtype=bool)
        for contour in contours.get(number, []):
            if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")).upper() != "CLOSED_PLANAR":
                skipped += 1
                continue
            points = np.asarray(contour.ContourData, float)
            if not points.size or points.size % 3 or not np.isfinite(points).all():
                raise InputError(f"a contour of ROI {names.get(number, number)!r} in {str(path)!r} has "
                                 f"{points.size} coordinates that are not x, y, z triplets of finite numbers; the "
                                 "RTSTRUCT is damaged")
            points = points.reshape(-1, 3)
            index = _to_index(points, image)
            z = int(np.round(index[:, 2].mean()))
            if np.abs(index[:, 2] - z).max() > _SLICE_TOLERANCE or not 0 <= z < shape[0]:
                raise InputError(f"a contour of ROI {names.get(number, number)!r} in {str(path)!r} does not lie in a "
                                 "slice of the image (drawn on another series or resampled?)")
            rows, columns = polygon(index[:, 1], index[:, 0], shape=shape[1:])
            mask[z, rows, columns] ^= True
        if not mask.any():
            warnings.append(f"ROI {names.get(number, number)!r} of {path.name!r} covers no voxel of the image")
        overlapping += int(np.count_nonzero(mask & (labels > 0)))
        labels[mask] = value
    if skipped:
        warnings.append(f"{skipped} contours of {path.name!r} are not closed planar polygons (points or open lines); "
                        "they were left out")
    if overlapping:
        warnings.append(f"{overlapping} voxels belong to several ROIs; each got the label of the last one")
    return labels, warnings
