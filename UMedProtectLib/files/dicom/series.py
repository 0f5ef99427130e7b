"""Finding one DICOM image series in a folder or DICOMDIR and reading it: pixels and geometry by SimpleITK (GDCM),
headers by pydicom, rescale slope and intercept applied (HU for CT).

A series is accepted when the protected copy can be written back exactly in the source's stored representation:
single-frame images, one value per pixel, an uncompressed little-endian transfer syntax, and slices that agree
on size, orientation, spacing and rescale, evenly spaced along their normal (no missing or repeated slice, no
gantry tilt). Anything else is refused with one line before any work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ...errors import InputError
from ..header_modality import dicom_modality
from ..image_io import ImageData, from_sitk
from ..memory import check_fits
from . import DICOMDIR, PathLike, is_dicom_file

# Transfer syntaxes whose pixel data is written back byte for byte: Implicit and Explicit VR Little Endian.
WRITABLE_SYNTAXES = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
# Label objects that sit beside images in a study folder; they are not image series.
NON_IMAGE_MODALITIES = ("SEG", "RTSTRUCT", "RTPLAN", "RTDOSE", "SR", "PR", "KO")
# Slices agree when orientation cosines differ by less than this and spacings by less than this fraction.
_TOLERANCE = 1e-3


@dataclass
class DicomSeries:
    """One image series: the rescaled voxels with their geometry, its slice files in array order, and its header."""

    image: ImageData  # path = the folder or DICOMDIR given, data_files = the slice files
    files: List[Path]  # the file of each slice along axis 0 of image.array
    root: Path  # outputs keep the slice files' paths relative to this folder
    series_uid: str
    frame_of_reference: Optional[str]
    slope: float
    intercept: float


def _candidates(path: Path) -> Tuple[List[Path], Path]:
    """The files a folder (recursively, hidden files skipped) or a DICOMDIR lists, and their root folder."""
    if path.name.upper() == DICOMDIR and path.is_file():
        from pydicom import dcmread
        from pydicom.fileset import FileSet

        try:
            return [Path(instance.path) for instance in FileSet(dcmread(path))], path.parent
        except Exception as error:  # pydicom raises ValueError, InvalidDicomError or KeyError for a damaged DICOMDIR
            raise InputError(f"DICOMDIR {str(path)!r} could not be read ({type(error).__name__})") from None
    if not path.exists():
        raise InputError(f"image folder {str(path)!r} does not exist; check the path")
    if not path.is_dir():
        raise InputError(f"image {str(path)!r} is a single file; give the DICOM series' folder (or its DICOMDIR)")
    files = [p for p in sorted(path.rglob("*")) if p.is_file() and p.name.upper() != DICOMDIR
             and not any(part.startswith(".") for part in p.relative_to(path).parts)]
    return files, path


def series_files(path: PathLike) -> List[Path]:
    """The files a DICOM input stands for: a folder's files (hidden ones skipped), or a DICOMDIR's listed files."""
    return _candidates(Path(path))[0]


def _headers(files: Sequence[Path]) -> List[Tuple[Path, "object"]]:
    """(file, header) of every readable DICOM file among `files`; other files are skipped."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError

    headers = []
    for path in files:
        try:
            header = dcmread(path, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError):
            header = None
        # Other files (notes, thumbnails) may sit beside a series and are skipped; a file that starts as DICOM and
        # ends before its series is named (pydicom reads a truncated file without complaint) is a damaged slice,
        # and skipping it dropped the slice from the series unnoticed.
        if header is not None and "SeriesInstanceUID" in header:
            headers.append((path, header))
        elif is_dicom_file(path):
            raise _damaged(path)
    return headers


def _damaged(path: Path) -> InputError:
    return InputError(f"{str(path)!r} is a damaged or truncated DICOM file; replace it or remove it from the folder")


def _describe(uid: str, items: Sequence[Tuple[Path, "object"]]) -> str:
    """A series as '<uid> (<description>, <n> files)' for the message that asks to choose one."""
    header = items[0][1]
    description = str(header.get("SeriesDescription", "") or header.get("Modality", "") or "no description")
    return f"{uid} ({description}, {len(items)} files)"


def _choose(source: Path, headers: List[Tuple[Path, "object"]],
            series_uid: Optional[str]) -> List[Tuple[Path, "object"]]:
    """The files of the one image series in `headers`, or of `series_uid`."""
    series: Dict[str, List[Tuple[Path, "object"]]] = {}
    for path, header in headers:
        if "Rows" in header and str(header.get("Modality", "")).upper() not in NON_IMAGE_MODALITIES:
            series.setdefault(str(header.get("SeriesInstanceUID", "")), []).append((path, header))
    if not series:
        raise InputError(f"{str(source)!r} holds no DICOM image series ({len(headers)} DICOM files, none an image)")
    if series_uid is not None:
        if series_uid not in series:
            raise InputError(f"--series-uid {series_uid} is not in {str(source)!r}, which holds "
                             + "; ".join(_describe(uid, items) for uid, items in series.items()))
    elif len(series) > 1:
        listed = "; ".join(_describe(uid, items) for uid, items in list(series.items())[:4])
        raise InputError(f"{str(source)!r} holds {len(series)} DICOM series ({listed}); choose one with --series-uid")
    chosen = series_uid if series_uid is not None else next(iter(series))
    for path, header in headers:  # a slice of the series cut off before its image size: damaged, not another object
        if str(header.SeriesInstanceUID) == chosen and "Rows" not in header:
            raise _damaged(path)
    return series[chosen]


def _number(header, keyword: str, default: float) -> float:
    """A numeric element, or `default` when absent or empty."""
    value = header.get(keyword)
    return float(value) if value not in (None, "") else default


def _check_slices(source: Path, items: List[Tuple[Path, "object"]]) -> List[Tuple[Path, "object"]]:
    """Refuse what cannot be read or written back exactly; return the slices sorted along their normal."""
    first = items[0][1]
    for path, header in items:
        syntax = str(getattr(getattr(header, "file_meta", None), "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
        if syntax not in WRITABLE_SYNTAXES:
            from pydicom.uid import UID

            raise InputError(f"{path.name!r} in {str(source)!r} is stored as {UID(syntax).name} ({syntax}), which "
                             "cannot be written back bit-exactly; decompress the series first (e.g. gdcmconv --raw)")
        if int(header.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(f"{path.name!r} in {str(source)!r} is a multi-frame (enhanced) image; give a series of "
                             "single-frame images (e.g. converted with dcm2dcm or emf2sf)")
        if int(header.get("SamplesPerPixel", 1)) != 1:
            raise InputError(f"{path.name!r} in {str(source)!r} has {header.SamplesPerPixel} values per pixel "
                             "(colour); give a grey-value series")
        if "ImagePositionPatient" not in header or "ImageOrientationPatient" not in header:
            raise InputError(f"{path.name!r} in {str(source)!r} has no image position or orientation; give a "
                             "cross-sectional series (CT, MR, PET)")
        for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "PixelRepresentation"):
            if header.get(keyword) != first.get(keyword):
                raise InputError(f"the slices of {str(source)!r} differ in {keyword} ({header.get(keyword)} in "
                                 f"{path.name!r}, {first.get(keyword)} in {items[0][0].name!r}); not one volume")
        for keyword in ("ImageOrientationPatient", "PixelSpacing"):
            if not np.allclose(np.asarray(header.get(keyword, [1, 1]), float), np.asarray(first.get(keyword, [1, 1]),
                               float), atol=_TOLERANCE):
                raise InputError(f"the slices of {str(source)!r} differ in {keyword}; not one volume")
        for keyword, default in (("RescaleSlope", 1.0), ("RescaleIntercept", 0.0)):
            if _number(header, keyword, default) != _number(first, keyword, default):
                raise InputError(f"the slices of {str(source)!r} have different {keyword}s; a rescale that varies "
                                 "per slice is not supported")
    orientation = np.asarray(first.ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    positions = np.array([np.asarray(header.ImagePositionPatient, float) for _, header in items])
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    items, positions, along = [items[i] for i in order], positions[order], along[order]
    if len(items) > 1:
        gaps = np.diff(along)
        if np.any(gaps < _TOLERANCE):
            index = int(np.argmin(gaps))
            raise InputError(f"{items[index][0].name!r} and {items[index + 1][0].name!r} in {str(source)!r} lie at the "
                             "same position (a repeated acquisition?); keep one series per folder or use --series-uid")
        typical = float(np.median(gaps))
        uneven = np.flatnonzero(np.abs(gaps - typical) > max(0.01 * typical, _TOLERANCE))
        if uneven.size:
            index = int(uneven[0])
            raise InputError(f"the slices of {str(source)!r} are not evenly spaced: {gaps[index]:.4g} mm between "
                             f"{items[index][0].name!r} and {items[index + 1][0].name!r}, {typical:.4g} mm elsewhere "
                             "(a missing slice?)")
        sideways = (positions - positions[0]) - np.outer(along - along[0], normal)
        if np.abs(sideways).max() > 0.01 * float(min(np.asarray(first.get("PixelSpacing", [1, 1]), float))):
            raise InputError(f"the slices of {str(source)!r} are not stacked along their normal (gantry tilt); "
                             "resample the series first")
    return items


def _read_pixels(source: Path, files: List[Path]) -> sitk.Image:
    """The rescaled voxels of the sorted slice files, read by SimpleITK's GDCM reader."""
    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileNames([str(path) for path in files])
    try:
        return reader.Execute()
    except RuntimeError:
        raise InputError(f"the DICOM series in {str(source)!r} could not be read (damaged or truncated "
                         "files)") from None


def read_series(path: PathLike, series_uid: Optional[str] = None,
                files: Optional[Sequence[Path]] = None) -> DicomSeries:
    """Read the one image series of a folder or DICOMDIR (or the one `series_uid` names) for protection.

    `files` (those a Slicer volume was loaded from) replaces the search: `path` is then the folder they lie under.
    """
    source = Path(path)
    files, root = ([Path(f) for f in files], source) if files is not None else _candidates(source)
    items = _check_slices(source, _choose(source, _headers(files), series_uid))
    first = items[0][1]
    check_fits(int(first.Rows) * int(first.Columns) * len(items), 4, f"DICOM series in {str(source)!r}")
    ordered = [item_path for item_path, _ in items]
    image = _read_pixels(source, ordered)
    if image.GetDimension() == 2:  # one slice: a 3D volume one slice thick, so that labels and outputs are 3D
        image = sitk.JoinSeries(image, 0.0, _number(first, "SliceThickness", 1.0) or 1.0)
        image.SetDirection(np.column_stack([np.asarray(first.ImageOrientationPatient, float).reshape(2, 3).T,
                                            np.cross(*np.asarray(first.ImageOrientationPatient, float).reshape(2, 3))]
                                           ).ravel().tolist())
        image.SetOrigin([float(v) for v in first.ImagePositionPatient])
    data = from_sitk(image, None)
    data.metadata = {}  # the DICOM header stays in the DICOM outputs; NRRD/NIfTI extras get none of it
    data.path, data.data_files, data.modality = source, ordered, dicom_modality(first)
    last = np.asarray(items[-1][1].ImagePositionPatient, float)
    end = data.image.TransformIndexToPhysicalPoint([0, 0, len(items) - 1])
    if not np.allclose(data.origin, np.asarray(first.ImagePositionPatient, float), atol=1e-2) or \
            not np.allclose(end, last, atol=1e-2):
        raise RuntimeError("SimpleITK's geometry of the series disagrees with the slices' positions")
    if data.array.dtype.kind not in "iuf":
        raise InputError(f"the DICOM series in {str(source)!r} has voxel type {data.array.dtype}; give a grey-value "
                         "series")
    return DicomSeries(data, ordered, root, str(first.SeriesInstanceUID), first.get("FrameOfReferenceUID"),
                       _number(first, "RescaleSlope", 1.0), _number(first, "RescaleIntercept", 0.0))
