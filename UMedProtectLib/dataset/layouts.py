"""Finding the image/label pairs of a dataset for `umed-protect fit-profile --dataset DIR_OR_CSV`.

Four layouts are accepted, tried in this order:

1. A CSV file with a header row and columns `image` and `label` (other columns are ignored); relative
   paths are relative to the CSV file's folder.
2. A folder with subfolders `images/` and `labels/`: each image is paired with the label file of the same
   name stem (the name without its image extension), e.g. images/case01.nii.gz with labels/case01.seg.nrrd.
3. A flat folder where each label sits beside its image with a suffix on the stem: `case01.nrrd` pairs
   with `case01_label.nrrd`, `case01_seg.nrrd`, `case01-label.nii.gz` or `case01.seg.nrrd` (any supported
   extension; the label's extension may differ from the image's).
4. DICOM (in the same folder as 3, or alone): a subfolder holding one series, `case01/`, pairs with a DICOM SEG
   or RTSTRUCT beside it, `case01_seg.dcm`, `case01_rtstruct.dcm`, `case01_label.dcm` or `case01.seg.dcm`. In a
   CSV, an image may be a series' folder too.

Hidden files are skipped. When nothing matches, the error says what was found and which layouts work.
`protect-dataset` keeps each file's path relative to the dataset's root (the folder, or the CSV file's folder).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

from ..errors import InputError
from ..files.dicom import is_series_input
from ..files.formats import IMAGE_EXTENSIONS
from ..files.transaction import resolved

PathLike = Union[str, Path]
Pair = Tuple[Path, Path]
LABEL_SUFFIXES = ("_label", "_seg", "-label", "-seg", "_labels", "_mask")
DICOM_LABEL_SUFFIXES = LABEL_SUFFIXES + ("_rtstruct", "-rtstruct", ".seg", ".rtstruct")
_LAYOUTS = ("a CSV with columns image,label; a folder with images/ and labels/ subfolders of same-named files; "
            "or a folder of NAME.nrrd + NAME_label.nrrd (or _seg, or NAME.seg.nrrd) pairs, or of DICOM series "
            "folders NAME/ + NAME_seg.dcm (SEG or RTSTRUCT)")


def split_name(path: Path) -> Tuple[str, str]:
    """(stem, extension) of a supported image or segmentation file name, or ("", "") for other files."""
    name = path.name
    lower = name.lower()
    for extension in (".seg.nrrd",) + tuple(sorted(IMAGE_EXTENSIONS, key=len, reverse=True)):
        if lower.endswith(extension) and len(lower) > len(extension):
            return name[: -len(extension)], extension
    return "", ""


def _files(folder: Path) -> List[Path]:
    """Supported image files directly in `folder`, sorted by name, hidden files skipped."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and split_name(p)[0])


def _from_csv(path: Path) -> List[Pair]:
    """Pairs listed in a CSV file with columns image and label."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            reader = csv.DictReader(stream)
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"dataset list {str(path)!r} could not be read as CSV ({type(error).__name__})") from None
    header = [key.strip().lower() for key in reader.fieldnames or [] if key]
    for column in ("image", "label"):
        if header.count(column) > 1:  # csv would let the last one win: a study protected with another's label
            raise InputError(f"dataset list {str(path)!r} has {header.count(column)} columns named {column}; keep one")
    if not rows or not {"image", "label"} <= {key.strip().lower() for key in rows[0] if key}:
        raise InputError(f"dataset list {str(path)!r} needs a header row with columns image,label and one row per pair")
    pairs = []
    for number, row in enumerate(rows, start=2):
        values = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
        if not values["image"] or not values["label"]:
            raise InputError(f"row {number} of {str(path)!r} lacks an image or a label path")
        pairs.append(tuple(Path(values[column]) if Path(values[column]).is_absolute()
                           else path.parent / values[column] for column in ("image", "label")))
    return pairs  # type: ignore[return-value]


def _from_subfolders(folder: Path) -> List[Pair]:
    """Pairs of same-stem files in images/ and labels/."""
    labels: Dict[str, Path] = {}
    for label in _files(folder / "labels"):
        labels.setdefault(split_name(label)[0], label)
    return [(image, labels[split_name(image)[0]]) for image in _files(folder / "images")
            if split_name(image)[0] in labels]


def _from_suffixes(folder: Path) -> List[Pair]:
    """Pairs of NAME.ext and NAME_label.ext (or another label suffix, or NAME.seg.nrrd) in one folder."""
    files = _files(folder)
    labels: Dict[str, Path] = {}
    for path in files:
        stem, extension = split_name(path)
        if extension == ".seg.nrrd":
            labels.setdefault(stem, path)
        for suffix in LABEL_SUFFIXES:
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                labels.setdefault(stem[: -len(suffix)], path)
    label_files = set(labels.values())
    return [(path, labels[split_name(path)[0]]) for path in files
            if path not in label_files and split_name(path)[0] in labels]


def _from_series_folders(folder: Path) -> List[Pair]:
    """Pairs of a DICOM series folder NAME/ and a DICOM label file NAME_seg.dcm (or another suffix) beside it."""
    labels: Dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(".dcm"):
            stem = path.name[: -len(".dcm")]
            for suffix in DICOM_LABEL_SUFFIXES:
                if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                    labels.setdefault(stem[: -len(suffix)], path)
    return [(path, labels[path.name]) for path in sorted(folder.iterdir())
            if path.is_dir() and not path.name.startswith(".") and path.name in labels]


def find_pairs(source: PathLike) -> List[Pair]:
    """The (image, label) pairs of a dataset given as a CSV file or a folder (see the module docstring)."""
    source = Path(source)
    if not source.exists():
        raise InputError(f"dataset {str(source)!r} does not exist; give a CSV file or a folder")
    if not (source.is_file() or source.is_dir()):  # reading a named pipe would wait for a writer forever
        raise InputError(f"dataset {str(source)!r} is not a regular file (a named pipe, socket or device); give a CSV "
                         "file or a folder")
    if source.is_file():
        pairs = _from_csv(source)
    elif (source / "images").is_dir() and (source / "labels").is_dir():
        pairs = _from_subfolders(source)
        if not pairs:
            raise InputError(f"no file in {str(source / 'images')!r} has a same-named label in "
                             f"{str(source / 'labels')!r}; name them alike, e.g. images/case01.nrrd and "
                             "labels/case01.nrrd")
    else:
        pairs = _from_suffixes(source) + _from_series_folders(source)
        if not pairs:
            found = ", ".join(p.name for p in _files(source)[:5]) or "no image files"
            raise InputError(f"no image/label pairs found in {str(source)!r} (found: {found}); use {_LAYOUTS}")
    for image, label in pairs:
        for path in (image, label):
            if not (path.is_file() or (path is image and path.is_dir() and is_series_input(path))):
                raise InputError(f"dataset file {str(path)!r} does not exist; fix the dataset list")
        if resolved(image) == resolved(label):
            raise InputError(f"the dataset gives {str(image)!r} as its own label; give each image its label map")
    return pairs


def dataset_root(source: PathLike) -> Path:
    """The folder that a dataset's relative paths start from: the folder itself, or the CSV file's folder."""
    source = Path(source)
    return source.parent if source.is_file() else source


def relative_path(path: Path, root: Path) -> Path:
    """`path` relative to the dataset root; a file outside the root has no place in a mirrored output tree."""
    try:
        relative = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root)))
    except ValueError:  # another drive (Windows)
        relative = Path("..")
    if relative.parts[:1] == ("..",):
        raise InputError(f"dataset file {str(path)!r} lies outside the dataset's folder {str(root)!r}; "
                         "protect-dataset writes outputs under the same relative paths, so list files inside it")
    return relative
