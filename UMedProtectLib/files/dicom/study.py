"""Reading a study whose image is a DICOM series or a file, and deciding whether its output is a DICOM series."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from ...errors import InputError
from ..formats import data_files, image_extension
from ..image_io import ImageData, read_image
from ..label_io import LabelMap, read_label
from ..roles import check_paths, check_values
from ..transaction import check_writable, confined, resolved
from . import DICOMDIR, is_series_input
from .labels import is_dicom_label, read_dicom_label
from .series import DicomSeries, read_series, series_files


def read_study(image: Path, label: Path, series_uid: Optional[str] = None,
               segments: Optional[Sequence[str]] = None) -> Tuple[ImageData, LabelMap, Optional[DicomSeries]]:
    """The image, its label map on the image's grid, and the DICOM series when the image is one; inputs given in
    each other's roles are refused first (roles.py)."""
    image, label = Path(image), Path(label)
    check_paths(image, label)
    data, labels, series = _read_pair(image, label, series_uid, segments)
    check_values(image, data.array, label, labels.array)
    return data, labels, series


def _read_pair(image: Path, label: Path, series_uid: Optional[str],
               segments: Optional[Sequence[str]]) -> Tuple[ImageData, LabelMap, Optional[DicomSeries]]:
    """read_study's reading, by the image's kind: a DICOM series with any label, or an image file with a label file."""
    if is_series_input(image):
        series = read_series(image, series_uid)
        if is_dicom_label(label):
            return series.image, read_dicom_label(label, series, segments), series
        if segments:
            raise InputError("--segments chooses segments of a DICOM SEG or RTSTRUCT label; for other labels use "
                             "--labels")
        return series.image, read_label(label, series.image), series
    if series_uid is not None:
        raise InputError("--series-uid chooses a series of a DICOM folder or DICOMDIR given as --image")
    if is_dicom_label(label):
        raise InputError(f"label {str(label)!r} is DICOM; give its image as the DICOM series' folder (the frame of "
                         "reference is checked against it)")
    if segments:
        raise InputError("--segments chooses segments of a DICOM SEG or RTSTRUCT label; for other labels use --labels")
    data = read_image(image)
    return data, read_label(label, data), None


def companion_files(path: Path) -> List[Path]:
    """The files an input stands for besides itself: a header's data files, or a DICOM folder's (DICOMDIR's) files."""
    from ..label_io import is_segmentation_file

    if is_series_input(path):
        return series_files(path)
    if is_segmentation_file(path) or not path.is_file():
        return []
    try:
        return data_files(path)
    except InputError:
        return []  # an unsupported extension is reported when the file is read


def series_output(image: Path, output: Path) -> bool:
    """Whether --output is a DICOM series folder: the image is DICOM and the output has no image file extension."""
    if not is_series_input(image):
        return False
    try:
        image_extension(output)
    except InputError:
        return True
    return False


def check_series_output(folder: Path, image: Path, overwrite: bool, inputs: Mapping[Path, Path]) -> None:
    """Before any work, refuse a DICOM output folder that is a file, the input's folder or inside it, not empty
    without --overwrite, or holding files that --overwrite would not replace or must not (an input, a link to one:
    `inputs`, resolved -> as given); its parent (or itself) must take new files."""
    source = image.parent if image.name.upper() == DICOMDIR else image
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--output {str(folder)!r} is a file; a DICOM series is written into a folder")
    if resolved(folder) == resolved(source) or resolved(source) in resolved(folder).parents:
        # The input folder is searched recursively: a series written inside it becomes a second series there.
        raise InputError(f"--output {str(folder)!r} is the input series' folder or inside it; choose a folder outside "
                         "it (inputs are never modified)")
    if folder.is_dir() and any(folder.iterdir()):
        if not overwrite:
            raise InputError(f"--output {str(folder)!r} is not empty; choose an empty or new folder, or pass "
                             "--overwrite to replace files of the same names")
        replaced = {os.path.relpath(path.absolute(), source.absolute()) for path in series_files(image)}
        stale = []
        for path in series_files(folder):
            if os.path.relpath(path, folder) in replaced:
                confined(path, inputs, folder, "the file of --output")  # refused at the commit, after the fit
            else:
                stale.append(path)
        if stale:  # they would stay beside the new series as a mixture of two
            raise InputError(f"--output {str(folder)!r} holds {len(stale)} files that the new series would not "
                             f"replace (e.g. {stale[0].name!r}); choose an empty or new folder")
    check_writable([folder / "series" if folder.is_dir() else folder])
