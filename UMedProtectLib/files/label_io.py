"""Reading label maps (plain label volumes or Slicer .seg.nrrd segmentations) onto an image's voxel grid.

A label on the image's grid is returned as is. A label on another grid is accepted when it is unambiguous:
a Slicer segmentation cropped to its own extent on the image's voxel lattice is padded with background, and
a label that covers the image's whole physical extent is resampled with nearest neighbour; both come with a
warning. Any other label (a different region of space) is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .image_io import ImageData, check_claimed_size, check_readable, read_sitk

PathLike = Union[str, Path]
# Geometry agreement, in voxels (positions) and relative units (spacing, direction): float32 headers
# such as NIfTI's are accurate to about 1e-6.
_TOLERANCE = 1e-3
# The largest label value of a segment (Slicer stores a layer's labels in at most 16 bits).
MAX_SEGMENT_VALUE = 2**16 - 1


@dataclass
class LabelMap:
    """A label array on the image grid (z, y, x), what happened on the way there, and segment names."""

    array: np.ndarray
    warnings: List[str] = field(default_factory=list)
    names: Dict[int, str] = field(default_factory=dict)


def is_segmentation_file(path: PathLike) -> bool:
    """Whether `path` is a Slicer segmentation (.seg.nrrd)."""
    return Path(path).name.lower().endswith(".seg.nrrd")


def _segmentation_image(path: Path) -> Tuple[sitk.Image, Dict[int, str], List[str]]:
    """Read a .seg.nrrd with slicerio and flatten its segments (possibly in overlapping layers) to one label image."""
    import slicerio

    check_readable(path, "label")
    header = sitk.ImageFileReader()
    header.SetFileName(str(path))
    try:
        header.ReadImageInformation()
    except RuntimeError:
        pass  # slicerio says what is wrong below
    else:
        check_claimed_size(path, header, "label")  # slicerio would allocate whatever the header claims
    try:
        segmentation = slicerio.read_segmentation(str(path))
    except Exception as error:  # slicerio raises IOError, ValueError or nrrd errors for damaged files
        raise InputError(f"label {str(path)!r} is not a readable Slicer segmentation "
                         f"({type(error).__name__})") from None
    voxels = segmentation.get("voxels")
    segments = segmentation.get("segments") or []
    if voxels is None or voxels.ndim not in (3, 4) or not segments:
        raise InputError(f"segmentation {str(path)!r} holds no segments; add a segment in Slicer and save again")
    warnings: List[str] = []
    layers = voxels.shape[0] if voxels.ndim == 4 else 1
    for segment in segments:  # a damaged or hostile header: say which segment, before numpy overflows or indexes
        name = segment.get("name", segment.get("id"))
        value, layer = segment.get("labelValue", 1), segment.get("layer", 0)
        if not isinstance(value, int) or not 1 <= value <= MAX_SEGMENT_VALUE:
            raise InputError(f"segment {name!r} of {str(path)!r} has label value {value!r}; a segment's value is "
                             f"from 1 to {MAX_SEGMENT_VALUE}: the file is damaged")
        if not isinstance(layer, int) or not 0 <= layer < layers:
            raise InputError(f"segment {name!r} of {str(path)!r} is in layer {layer!r}, and the file holds "
                             f"{layers} layer(s): the file is damaged")
    values = [int(segment.get("labelValue", 1)) for segment in segments]
    if len(set(values)) != len(values):
        # Segments in different layers may share a label value: number them in file order instead.
        values = list(range(1, len(segments) + 1))
        warnings.append("the segmentation's segments share label values across layers; they were numbered "
                        + ", ".join(f"{v} = {s.get('name', s.get('id'))}" for v, s in zip(values, segments)))
    flat = np.zeros(voxels.shape[-3:], dtype=np.uint16 if max(values) > 255 else np.uint8)
    covered = np.zeros(flat.shape, dtype=bool)
    overlapping = 0
    for value, segment in zip(values, segments):
        mask = slicerio.segment_mask(segmentation, segment)
        overlapping += int(np.count_nonzero(mask & covered))
        covered |= mask
        flat[mask] = value  # a later segment wins where segments overlap
    if overlapping:
        warnings.append(f"{overlapping} voxels belong to several segments; each got the label of the last one")
    # slicerio gives voxels in (i, j, k) order and an IJK-to-LPS matrix; ITK wants (k, j, i) plus geometry.
    matrix = np.asarray(segmentation["ijkToLPS"], dtype=float)
    spacing = np.linalg.norm(matrix[:3, :3], axis=0)
    if np.any(spacing == 0):
        raise InputError(f"segmentation {str(path)!r} has a degenerate voxel size; save it again from Slicer")
    image = sitk.GetImageFromArray(np.ascontiguousarray(flat.transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(v) for v in matrix[:3, 3]])
    image.SetDirection([float(v) for v in (matrix[:3, :3] / spacing).ravel()])
    names = {value: str(segment.get("name", segment.get("id", value))) for value, segment in zip(values, segments)}
    return image, names, warnings


def _as_3d(image: sitk.Image) -> sitk.Image:
    """A 2D image as a one-slice 3D image with unit slice spacing (so that 2D images compare with 3D ones)."""
    if image.GetDimension() == 3:
        return image
    return sitk.JoinSeries(image)


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    """Same size, spacing, origin and direction within float-header tolerance."""
    if a.GetSize() != b.GetSize():
        return False
    spacing_a, spacing_b = np.array(a.GetSpacing()), np.array(b.GetSpacing())
    if np.any(np.abs(spacing_a - spacing_b) > _TOLERANCE * spacing_a):
        return False
    if np.any(np.abs(np.array(a.GetDirection()) - np.array(b.GetDirection())) > _TOLERANCE):
        return False
    return bool(np.all(np.abs(np.array(a.GetOrigin()) - np.array(b.GetOrigin())) <= _TOLERANCE * spacing_a))


def _continuous_index(label: sitk.Image, points: np.ndarray) -> np.ndarray:
    """Continuous voxel indices in `label` of physical points (rows)."""
    return np.array([label.TransformPhysicalPointToContinuousIndex([float(v) for v in p]) for p in points])


def _corners(image: sitk.Image) -> np.ndarray:
    """Physical positions of the centres of the image's 8 corner voxels."""
    last = np.subtract(image.GetSize(), 1)
    corners = [np.multiply(choice, last) for choice in np.ndindex(2, 2, 2)]
    return np.array([image.TransformContinuousIndexToPhysicalPoint([float(c) for c in corner]) for corner in corners])


def _sub_lattice_offset(label: sitk.Image, image: sitk.Image):
    """The integer voxel offset of `label` inside `image` when it is a block of the image's own lattice, else None."""
    spacing = np.array(image.GetSpacing())
    if np.any(np.abs(np.array(label.GetSpacing()) - spacing) > _TOLERANCE * spacing):
        return None
    if np.any(np.abs(np.array(label.GetDirection()) - np.array(image.GetDirection())) > _TOLERANCE):
        return None
    offset = np.array(image.TransformPhysicalPointToContinuousIndex(label.GetOrigin()))
    if np.any(np.abs(offset - np.round(offset)) > _TOLERANCE):
        return None
    offset = np.round(offset).astype(int)
    if np.any(offset < 0) or np.any(offset + np.array(label.GetSize()) > np.array(image.GetSize())):
        return None
    return offset


def _covers(label: sitk.Image, image: sitk.Image) -> bool:
    """Whether every image voxel centre lies inside the label's voxel extent (half a voxel beyond its centres)."""
    index = _continuous_index(label, _corners(image))
    size = np.array(label.GetSize())
    return bool(np.all(index >= -0.5 - _TOLERANCE) and np.all(index <= size - 0.5 + _TOLERANCE))


def onto_grid(label: sitk.Image, image: sitk.Image, path: Path) -> Tuple[sitk.Image, List[str]]:
    """The label on the image's grid: as is, padded (cropped segmentation) or nearest-neighbour resampled."""
    if _same_grid(label, image):
        return label, []
    offset = _sub_lattice_offset(label, image)
    if offset is not None:
        padded = sitk.Image(image.GetSize(), label.GetPixelID())
        padded.CopyInformation(image)
        padded = sitk.Paste(padded, label, label.GetSize(), [0, 0, 0], [int(v) for v in offset])
        return padded, [f"label {path.name!r} covers part of the image on the same voxel grid; "
                        "it was padded with background (label 0) to the image's extent"]
    if _covers(label, image):
        resampled = sitk.Resample(label, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, label.GetPixelID())
        return resampled, [f"label {path.name!r} is on another voxel grid (size {label.GetSize()}, spacing "
                           f"{tuple(round(s, 4) for s in label.GetSpacing())}) covering the image; it was "
                           "resampled onto the image's grid with nearest neighbour"]
    raise InputError(f"label {str(path)!r} does not cover the image's region of space (different origin, size or "
                     "orientation); export the label on the image's grid (in Slicer: reference volume = the image)")


def read_label(path: PathLike, reference: ImageData) -> LabelMap:
    """Read a label map (plain volume or .seg.nrrd) onto the reference image's grid; refuse non-integer labels."""
    path = Path(path)
    if is_segmentation_file(path):
        label, names, warnings = _segmentation_image(path)
    else:
        label, names, warnings = read_sitk(path, "label"), {}, []
    array = sitk.GetArrayViewFromImage(label)
    if array.dtype.kind not in "iub":
        if array.dtype.kind != "f" or not np.array_equal(array, np.round(array)):
            raise InputError(f"label {str(path)!r} has non-integer values (a probability or intensity image?); "
                             "give a label map with integer values")
        if array.size and (array.min() < -2**31 or array.max() >= 2**31):
            raise InputError(f"label {str(path)!r} has values beyond +-2^31 stored as real numbers; give a label map "
                             "with integer values")
        label = sitk.Cast(label, sitk.sitkInt32)
        array = sitk.GetArrayViewFromImage(label)
    if array.dtype.kind == "i" and array.size and array.min() < 0:
        warnings.append(f"label {path.name!r} has negative values; they count as background (only values > 0 form "
                        "the region to protect)")
    grid, more = onto_grid(_as_3d(label), _as_3d(reference.image), path)
    labels = sitk.GetArrayFromImage(grid).reshape(reference.array.shape)
    return LabelMap(labels, warnings + more, names)
