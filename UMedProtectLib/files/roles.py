"""Inputs given in each other's roles, recognised before any work and refused in one line that says what to swap.

Swapped inputs otherwise fail late and misleadingly: a series folder given as the label is "an unsupported file
type", and a label map given as the image gets a budget of a fraction of its 0..1 range that "is less than the
smallest change its values can hold; choose a larger one". Here: by their paths, before anything is read (a folder
or DICOMDIR as the label, a DICOM SEG or RTSTRUCT as the image, a label file of a type no reader takes); by
their values, once both are read and before the method starts (an image with a label map's few whole values beside
a label with more values than it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import InputError
from .dicom import is_dicom_file, is_series_input
from .formats import LABEL_KINDS, image_extension
from .image_io import check_not_special
from .label_io import is_segmentation_file

SWAPPED = "were --image and --label swapped? Give the scan as --image and its label as --label"
# At most this many different values, all whole and none below 0, make an image look like a label map: a scan holds
# hundreds at least (the 8-bit MNI template of the demo 204), a label map a handful.
LABEL_LIKE_VALUES = 16


def _dicom_modality(path: Path) -> str:
    """The Modality of a DICOM file ("" when it has none or cannot be read)."""
    from pydicom import dcmread

    try:
        return str(dcmread(path, stop_before_pixels=True, specific_tags=["Modality"]).get("Modality", "")).upper()
    except Exception:  # a damaged file is reported by the reader that needs it
        return ""


def check_paths(image: Path, label: Path) -> None:
    """Refuse, by their paths alone, inputs whose kinds fit the other role, and label files no reader takes."""
    check_not_special(image, "image")  # before the DICOM checks below open the files
    check_not_special(label, "label")
    if is_series_input(label):
        swap = f"; {SWAPPED}" if image.is_file() else ""
        raise InputError(f"label {str(label)!r} is a folder or DICOMDIR, which holds an image series, not a label"
                         f"{swap}. A label is {LABEL_KINDS}")
    if image.is_file() and is_dicom_file(image):
        modality = _dicom_modality(image)
        if modality in ("SEG", "RTSTRUCT"):
            raise InputError(f"image {str(image)!r} is a DICOM {modality}, a label; {SWAPPED} (a DICOM image goes "
                             "as its series' folder)")
    if is_dicom_file(label):
        return  # a DICOM label's kind is checked when it is read (dicom/labels.py), with the series it belongs to
    if not is_segmentation_file(label):
        try:
            image_extension(label)
        except InputError:
            raise InputError(f"label {str(label)!r} has an unsupported file type; a label is {LABEL_KINDS}") from None


def _few_values(array: np.ndarray, limit: int) -> Optional[np.ndarray]:
    """The array's distinct values when there are at most `limit` of them, else None.

    A strided sample of about 100,000 voxels answers first: a scan shows more than `limit` values there, so a large
    CT costs no sort of the whole volume.
    """
    flat = array.ravel()
    for voxels in (flat[::max(1, flat.size // 100_000)], flat):
        values = np.unique(voxels)
        if len(values) > limit:
            return None
    return values


def check_values(image: Path, image_array: np.ndarray, label: Path, label_array: np.ndarray) -> None:
    """Refuse an image that looks like a label map beside a label that does not (more different values than a label map
    holds): swapped inputs. A label with a few values more than the image is still a label map."""
    values = _few_values(image_array, LABEL_LIKE_VALUES)
    if values is None or len(values) < 2 or values[0] < 0 or not np.array_equal(values, np.round(values)):
        return
    if _few_values(label_array, LABEL_LIKE_VALUES) is None:
        shown = ", ".join(f"{v:g}" for v in values)
        raise InputError(f"image {str(image)!r} holds only the values {shown}, like a label map, and label "
                         f"{str(label)!r} more than {LABEL_LIKE_VALUES} different values, like an image; {SWAPPED}")
