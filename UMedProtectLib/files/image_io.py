"""Reading and writing scalar medical images (the file types of formats.py) with their geometry.

Arrays are numpy in SimpleITK order (z, y, x); a 2D image is read as one axial slice (shape (1, y, x)) and
written back as 2D. Writing keeps the reference image's spacing, origin, direction and metadata dictionary
(minus the keys ITK's readers add about the read itself), and is atomic (see transaction.py).
"""

from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from .formats import PathLike, data_files, image_extension
from .header_modality import file_modality
from .memory import check_fits
from .transaction import OutputTransaction, full_disk

if TYPE_CHECKING:
    from ..method.modality import HeaderModality

# Metadata that ITK's readers add to describe the read, not the image; writing it back would be wrong or noise.
# No deflate stream (gzip, zlib: what NRRD, NIfTI and MetaImage use) expands more than 1032 to 1.
MAX_COMPRESSION = 1100
_READER_KEYS = re.compile(r"^(ITK_InputFilterName|ITK_original_direction|ITK_original_spacing|ITK_sform_corrected)$")


@dataclass
class ImageData:
    """A scalar image: voxels in (z, y, x), its geometry in SimpleITK (x, y, z) order, metadata and the source."""

    array: np.ndarray
    spacing: Tuple[float, ...]
    origin: Tuple[float, ...]
    direction: Tuple[float, ...]
    metadata: Dict[str, str]
    image: sitk.Image
    path: Optional[Path] = None
    data_files: List[Path] = field(default_factory=list)
    modality: Optional["HeaderModality"] = None  # what the file's header says it is (header_modality.py), if anything

    @property
    def spacing_xyz(self) -> Tuple[float, float, float]:
        """Spacing as (x, y, z), with 1.0 for the slice axis of a 2D image."""
        return tuple(self.spacing) + (1.0,) * (3 - len(self.spacing))  # type: ignore[return-value]


def check_not_special(path: Path, what: str) -> None:
    """Refuse a named pipe, socket or device before anything opens it (opening a named pipe waits for a writer that
    never comes)."""
    if path.exists() and not (path.is_file() or path.is_dir()):
        raise InputError(f"{what} {str(path)!r} is not a regular file (a named pipe, socket or device); give the file "
                         "itself")


def check_readable(path: Path, what: str) -> str:
    """Refuse a missing path, a folder, a named pipe or device, or an unsupported extension before a reader opens
    it (opening a named pipe waits for a writer that never comes)."""
    extension = image_extension(path)
    if not path.exists():
        raise InputError(f"{what} file {str(path)!r} does not exist; check the path")
    if path.is_dir():
        raise InputError(f"{what} {str(path)!r} is a folder; give the image file inside it")
    check_not_special(path, what)
    for data in data_files(path):
        if not data.is_file():
            raise InputError(f"{what} header {str(path)!r} names data file {str(data)!r}, which does not exist")
    return extension


def check_claimed_size(path: Path, reader: sitk.ImageFileReader, what: str) -> None:
    """Refuse, before anything is allocated, a header whose size the file cannot hold or the memory cannot take, and
    compressed data that decompresses to more than the header claims."""
    voxels = int(np.prod(reader.GetSize(), dtype=object)) * reader.GetNumberOfComponents()
    voxel_bytes = sitk.Image([1] * reader.GetDimension(), reader.GetPixelID()).GetSizeOfPixelComponent()
    stored = sum(p.stat().st_size for p in [path] + data_files(path) if p.is_file())
    if voxels * voxel_bytes > MAX_COMPRESSION * stored + 4096:
        raise InputError(f"{what} {str(path)!r} claims {voxels:,} voxels ({voxels * voxel_bytes / 2**30:.3g} GB) in a "
                         f"file of {stored:,} bytes; the header is damaged or hostile")
    if what == "image":
        check_fits(voxels, voxel_bytes, f"image {str(path)!r}")
    header = int(float(reader.GetMetaData("vox_offset"))) if reader.HasMetaDataKey("vox_offset") else 0
    check_decompressed_size(path, header + voxels * voxel_bytes, what)


def _gzip_start(path: Path) -> Optional[int]:
    """Where the gzip stream of `path` starts: 0 for a .nii.gz, after the header of a NRRD with its data attached and
    gzip-encoded; None when it holds none (other formats' readers decompress only the size their header claims)."""
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return 0
    if not name.endswith(".nrrd"):
        return None
    with open(path, "rb") as stream:
        head = stream.read(2**16)
    end = head.find(b"\n\n")
    fields = dict(line.partition(b":")[::2] for line in head[:end].lower().splitlines() if b":" in line)
    if end < 0 or b"data file" in fields or b"datafile" in fields:
        return None
    return end + 2 if fields.get(b"encoding", b"").strip() in (b"gzip", b"gz") else None


def check_decompressed_size(path: Path, limit: int, what: str) -> None:
    """Refuse a gzip stream that decompresses to more than `limit` bytes (what the header claims, with its own
    bytes): streamed with a bounded output, so that a decompression bomb is refused before it fills the memory
    (slicerio's NRRD reader decompresses the whole stream at once)."""
    start = _gzip_start(path)
    if start is None:
        return
    total, pending = 0, b""
    decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
    with open(path, "rb") as stream:
        stream.seek(start)
        while total <= limit + 4096:
            pending = pending or stream.read(2**20)
            if not pending:
                return
            try:
                total += len(decompressor.decompress(pending, 2**22))
            except zlib.error:
                return  # damaged: the reader says so
            pending = decompressor.unconsumed_tail
            if decompressor.eof:  # gzip allows several members one after the other
                pending, decompressor = decompressor.unused_data, zlib.decompressobj(zlib.MAX_WBITS | 16)
    raise InputError(f"{what} {str(path)!r} decompresses to more than the {limit:,} bytes its header describes "
                     "(a damaged file or a decompression bomb)")


def read_sitk(path: PathLike, what: str = "image") -> sitk.Image:
    """Read a scalar 2D/3D image with SimpleITK, turning every problem into a one-line InputError."""
    path = Path(path)
    extension = check_readable(path, what)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        raise InputError(f"{what} {str(path)!r} could not be read as {extension} (damaged or not that "
                         "format)") from None
    dimension, components = reader.GetDimension(), reader.GetNumberOfComponents()
    size = reader.GetSize()
    check_claimed_size(path, reader, what)
    if components != 1:
        raise InputError(f"{what} {str(path)!r} has {components} values per voxel (vector or colour image); "
                         "give a scalar (grey-value) image")
    if dimension == 4 and size[3] == 1:
        dimension = 3  # a 3D volume stored with a single time point
    if dimension not in (2, 3):
        raise InputError(f"{what} {str(path)!r} is {dimension}D; give a 2D or 3D scalar image (split 4D series first)")
    try:
        image = reader.Execute()
    except RuntimeError:
        raise InputError(f"{what} {str(path)!r} could not be read (damaged or truncated file)") from None
    if image.GetDimension() == 4:
        image = sitk.Extract(image, list(size[:3]) + [0], [0, 0, 0, 0])
    return image


def from_sitk(image: sitk.Image, path: Optional[Path] = None) -> ImageData:
    """Wrap a SimpleITK image as ImageData (2D becomes one slice)."""
    array = sitk.GetArrayFromImage(image)
    if array.ndim == 2:
        array = array[None]
    metadata = {key: image.GetMetaData(key) for key in image.GetMetaDataKeys()}
    return ImageData(array, tuple(image.GetSpacing()), tuple(image.GetOrigin()), tuple(image.GetDirection()),
                     metadata, image, path, data_files(path) if path is not None else [])


def _nifti_nonfinite(path: Path, metadata: Dict[str, str]) -> int:
    """Count NaN/Inf voxels of a float NIfTI file from its raw data: ITK's NIfTI reader silently turns NaN into 0."""
    dtype = {"16": "f4", "64": "f8"}.get(metadata.get("datatype", ""))
    if dtype is None:
        return 0
    with (gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")) as stream:
        raw = stream.read()
    endian = "<" if int.from_bytes(raw[:4], "little") in (348, 540) else ">"
    dims = [int(metadata.get(f"dim[{axis}]", "1")) for axis in range(1, int(metadata.get("dim[0]", "3")) + 1)]
    count = int(np.prod(dims))
    voxels = np.frombuffer(raw, dtype=endian + dtype, count=count, offset=int(float(metadata["vox_offset"])))
    return int(np.count_nonzero(~np.isfinite(voxels)))


def read_image(path: PathLike) -> ImageData:
    """Read a scalar image for protection; refuse vector, 4D, non-numeric and NaN/Inf images."""
    path = Path(path)
    data = from_sitk(read_sitk(path, "image"), path)
    if data.array.dtype.kind not in "iuf":
        raise InputError(f"image {str(path)!r} has voxel type {data.array.dtype}; give an integer or real image")
    count = 0
    if data.array.dtype.kind == "f":
        count = int(np.count_nonzero(~np.isfinite(data.array)))
        if not count and image_extension(path) in (".nii", ".nii.gz"):
            count = _nifti_nonfinite(path, data.metadata)
    if count:
        raise InputError(f"image {str(path)!r} has {count} NaN or infinite voxels; fix or mask them first")
    data.modality = file_modality(data.metadata)
    return data


def to_sitk(array: np.ndarray, reference: ImageData) -> sitk.Image:
    """A SimpleITK image of `array` on the reference's grid, with the reference's metadata dictionary."""
    array = np.asarray(array)
    expected = reference.array.shape
    if array.shape != expected:
        raise ValueError(f"array shape {array.shape} differs from the reference image's {expected}")
    image = sitk.GetImageFromArray(array.reshape(sitk.GetArrayViewFromImage(reference.image).shape))
    image.CopyInformation(reference.image)
    for key, value in reference.metadata.items():
        if not _READER_KEYS.match(key) and "[UNKNOWN_PRINT_CHARACTERISTICS]" not in value:
            image.SetMetaData(key, value)
    return image


def stage_image(transaction: OutputTransaction, array: np.ndarray, reference: ImageData, path: PathLike) -> None:
    """Write `array` on the reference's grid into `transaction` (it appears at `path` on commit)."""
    image_extension(path)
    image = to_sitk(array, reference)
    staged = transaction.stage(path)
    try:
        sitk.WriteImage(image, str(staged), useCompression=True)
    except RuntimeError as error:
        full = full_disk(staged.parent.parent)
        if full is not None:
            raise full from None
        first = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise InputError(f"could not write {str(path)!r}: {first}") from None


def write_outputs(images: Sequence[Tuple[np.ndarray, ImageData, PathLike]] = (),
                  files: Optional[Mapping[PathLike, bytes]] = None, overwrite: bool = False,
                  keep_intact: Iterable[PathLike] = ()) -> List[Path]:
    """Write images and ready-made files (report JSON, preview PNG) so that either all appear or none."""
    with OutputTransaction(overwrite, keep_intact) as transaction:
        for array, reference, path in images:
            stage_image(transaction, array, reference, path)
        for path, content in (files or {}).items():
            transaction.stage(path).write_bytes(content)
        return transaction.commit()
