"""A DICOM File-set (a DICOMDIR and its instances under standard File IDs) of derived series and their labels: the
form media and a PACS import take.

pydicom's FileSet writes the DICOMDIR and copies each instance to a File ID of the standard's form
(PTxxxxxx/STxxxxxx/SExxxxxx/IMxxxxxx): the series' own file names are seldom valid File IDs (at most eight upper-case
letters, digits or underscores per component). The set is written to a hidden folder beside its place and renamed
into it, so a reader never sees half a set; an earlier set there is replaced only once the new one is complete.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from ...errors import InputError
from . import DICOMDIR


def write_file_set(files: Sequence[Path], folder: Path) -> Path:
    """Write `files` (DICOM instances, not modified) as a File-set into `folder`; returns its DICOMDIR."""
    from pydicom.fileset import FileSet

    folder = Path(folder)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    file_set = FileSet()
    try:
        for path in files:
            file_set.add(str(path))
    except ValueError as error:  # pydicom refuses an instance that lacks what its directory record needs
        raise InputError(f"cannot index {str(path)!r} in a DICOMDIR: {error}") from None
    partial.mkdir(parents=True)
    try:
        file_set.write(str(partial))
        if folder.exists():
            replaced = folder.with_name(f".{folder.name}.replaced-{os.getpid()}")
            os.replace(folder, replaced)
            os.replace(partial, folder)
            shutil.rmtree(replaced, ignore_errors=True)
        else:
            os.replace(partial, folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder / DICOMDIR
