"""A DICOM SEG or RTSTRUCT as the label map of a DICOM series: segments chosen by name or number, frame of reference
checked against the image's."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from ..label_io import LabelMap, onto_grid
from ..formats import LABEL_KINDS
from . import PathLike, is_dicom_file
from .series import DicomSeries

LABEL_MODALITIES = ("SEG", "RTSTRUCT")


def is_dicom_label(path: PathLike) -> bool:
    """Whether a --label is a DICOM file (SEG or RTSTRUCT; anything else is refused when read)."""
    return Path(path).is_file() and is_dicom_file(path)


def choose_segments(available: Dict[int, str], wanted: Optional[Sequence[str]], path: Path) -> List[int]:
    """The segment (ROI) numbers chosen by number or name (case-insensitive), in the order given; all by default."""
    if not available:
        raise InputError(f"label {str(path)!r} holds no segments")
    if not wanted:
        return list(available)
    chosen: List[int] = []
    for item in wanted:
        text = str(item).strip()
        if text.isdigit() and int(text) in available:
            number = int(text)
        else:
            matches = [n for n, name in available.items() if name.strip().lower() == text.lower()]
            if len(matches) != 1:
                listed = ", ".join(f"{n} = {name}" for n, name in available.items())
                problem = "names several segments" if matches else "is not a segment"
                raise InputError(f"--segments {text!r} {problem} of {str(path)!r}, which holds {listed}")
            number = matches[0]
        if number not in chosen:
            chosen.append(number)
    return chosen


def _check_frames(path: Path, frames: Dict[int, str], series: DicomSeries) -> None:
    """Refuse a label drawn in another frame of reference than the image's."""
    other = sorted({frame for frame in frames.values() if frame != (series.frame_of_reference or "")})
    if other:
        raise InputError(f"label {str(path)!r} is in frame of reference {other[0]}, the image series in "
                         f"{series.frame_of_reference or 'none'}; it was drawn on another scan")


def read_dicom_label(path: PathLike, series: DicomSeries, segments: Optional[Sequence[str]] = None) -> LabelMap:
    """Read a SEG or an RTSTRUCT onto the series' grid: values 1..n for the chosen segments, with their names."""
    from pydicom import dcmread

    from .rtstruct import rasterise, roi_frames, roi_names
    from .seg import seg_image, segment_names

    path = Path(path)
    try:
        dataset = dcmread(path)
    except Exception as error:  # pydicom raises InvalidDicomError, OSError, ValueError... for damaged files
        raise InputError(f"label {str(path)!r} could not be read as DICOM ({type(error).__name__})") from None
    modality = str(dataset.get("Modality", "")).upper()
    if modality not in LABEL_MODALITIES:
        raise InputError(f"label {str(path)!r} is a DICOM {modality or 'object without modality'}, not a label; a "
                         f"label is {LABEL_KINDS}")
    names = segment_names(dataset) if modality == "SEG" else roi_names(dataset)
    chosen = choose_segments(names, segments, path)
    if modality == "SEG":
        _check_frames(path, {0: str(dataset.get("FrameOfReferenceUID", "") or "")}, series)
        direction = np.asarray(series.image.image.GetDirection(), float).reshape(3, 3)
        image, warnings = seg_image(dataset, path, chosen, direction[:, 2])
        grid, more = onto_grid(image, series.image.image, path)
        array, warnings = sitk.GetArrayFromImage(grid).reshape(series.image.array.shape), warnings + more
    else:
        _check_frames(path, roi_frames(dataset, chosen), series)
        array, warnings = rasterise(dataset, path, chosen, series.image)
    return LabelMap(array, warnings, {value: names[number] for value, number in enumerate(chosen, start=1)})
