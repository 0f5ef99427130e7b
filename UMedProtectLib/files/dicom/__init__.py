"""DICOM in and out: a series folder (or DICOMDIR) as the image, a SEG or RTSTRUCT as the label, a derived series out.

`series.py` finds and reads one image series (pixels and geometry by SimpleITK/GDCM, headers by pydicom),
`seg.py` and `rtstruct.py` turn a DICOM SEG or an RTSTRUCT into a label map on the series' grid (`labels.py`
chooses segments and checks the frame of reference), `writer.py` writes the protected series as a new derived
series, and `dataset.py` finds the studies of a folder of series. No de-identification is done here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

PathLike = Union[str, Path]
DICOMDIR = "DICOMDIR"


def is_dicom_file(path: PathLike) -> bool:
    """Whether `path` is a file in the DICOM file format (the 'DICM' marker after the 128-byte preamble)."""
    try:
        with open(path, "rb") as stream:
            return stream.read(132)[128:] == b"DICM"
    except OSError:
        return False


def is_series_input(path: PathLike) -> bool:
    """Whether an --image names DICOM: a folder (of DICOM files) or a DICOMDIR."""
    path = Path(path)
    return path.is_dir() or path.name.upper() == DICOMDIR
