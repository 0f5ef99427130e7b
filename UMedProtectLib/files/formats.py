"""Which image files the engine reads and writes: the supported extensions, and the data files beside a header.

Plain path rules, no reading of pixels: the write transaction asks them of planned outputs before any work, the
readers and the dataset layouts of inputs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import List, Union

from ..errors import InputError

PathLike = Union[str, Path]
IMAGE_EXTENSIONS = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
# Every kind of label the readers take (label_io.py, dicom/labels.py), for the help and every refusal of a label.
LABEL_KINDS = (f"a label map ({', '.join(IMAGE_EXTENSIONS)}), a Slicer segmentation (.seg.nrrd), or a DICOM SEG or "
               "RTSTRUCT file")


def image_extension(path: PathLike) -> str:
    """The supported extension of `path` (lower case), or InputError naming the supported ones."""
    name = Path(path).name.lower()
    for extension in sorted(IMAGE_EXTENSIONS, key=len, reverse=True):
        if name.endswith(extension) and len(name) > len(extension):
            return extension
    raise InputError(f"{str(path)!r} has an unsupported file type; use one of {', '.join(IMAGE_EXTENSIONS)}")


def data_files(path: PathLike) -> List[Path]:
    """The separate data file(s) that a .mhd or .nhdr header names (empty for single-file formats)."""
    path = Path(path)
    extension = image_extension(path)
    if extension not in (".mhd", ".nhdr") or not path.is_file():
        return []
    pattern = r"^\s*ElementDataFile\s*=\s*(.+?)\s*$" if extension == ".mhd" else r"^\s*data ?file\s*:\s*(.+?)\s*$"
    try:
        text = path.read_text(encoding="latin-1", errors="replace")
    except OSError:
        return []
    names: List[Path] = []
    for line in text.splitlines():
        if extension == ".nhdr" and not line.strip():
            break  # the NRRD header ends at the first empty line
        match = re.match(pattern, line, flags=re.IGNORECASE)
        if match:
            value = match.group(1)
            # LOCAL data and file lists (LIST, printf-style patterns) name no single file beside the header.
            if value.upper() not in ("LOCAL", "LIST") and "%" not in value and " " not in value:
                names.append(path.parent / value)
    return names


def written_data_files(path: PathLike) -> List[Path]:
    """The data file that writing an image to `path` puts beside it (stage_image compresses: .zraw, .raw.gz)."""
    path = Path(path)
    extension = image_extension(path)
    suffix = {".mhd": ".zraw", ".nhdr": ".raw.gz"}.get(extension)
    return [path.with_name(path.name[: -len(extension)] + suffix)] if suffix else []
