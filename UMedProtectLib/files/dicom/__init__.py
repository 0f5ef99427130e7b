"""DICOM in and out: a series folder (or DICOMDIR) as the image, a SEG or RTSTRUCT as the label, a derived series out.

`series.py` finds and reads one image series (pixels and geometry by SimpleITK/GDCM, headers by pydicom),
`seg.py` and `rtstruct.py` turn a DICOM SEG or an RTSTRUCT into a label map on the series' grid (`labels.py`
chooses segments and checks the frame of reference), `writer.py` writes the protected series as a new derived
series (`references.py` re-points a SEG or RTSTRUCT at it, `dicomdir.py` indexes them in a DICOMDIR), and
`dataset.py` finds the studies of a folder of series. No de-identification is done here. Everything but reading a SEG
(highdicom, pydicom 3) also runs on the pydicom 2.4 that 3D Slicer bundles.
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


def save_dataset(dataset, path: PathLike) -> None:
    """Write a dataset as it was read (preamble, meta and encoding kept), under pydicom 3 or the pydicom 2.4 that 3D
    Slicer bundles (docs/slicer-module.md), whose save_as names the same choice differently."""
    import pydicom

    if int(pydicom.__version__.split(".")[0]) >= 3:
        dataset.save_as(path, enforce_file_format=False)
    else:
        dataset.save_as(path, write_like_original=True)


def is_series_input(path: PathLike) -> bool:
    """Whether an --image names DICOM: a folder (of DICOM files) or a DICOMDIR."""
    path = Path(path)
    return path.is_dir() or path.name.upper() == DICOMDIR
