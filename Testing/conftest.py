"""Shared fixtures: the embedded real sample study and small synthetic studies with non-trivial geometry."""

import os

# The Slicer panel's Qt test runs without a display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Dict, Optional, Sequence  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from UMedProtectLib.method.masks import band_and_interior  # noqa: E402

# An oblique orientation (a rotation about z by 30 degrees, then x flipped) so that direction bugs show.
_C, _S = np.cos(np.pi / 6), np.sin(np.pi / 6)
OBLIQUE = (-_C, -_S, 0.0, -_S, _C, 0.0, 0.0, 0.0, 1.0)


def sitk_image(array: np.ndarray, spacing: Sequence[float] = (0.8, 0.9, 2.5),
               origin: Sequence[float] = (-12.5, 30.0, 7.25), direction: Sequence[float] = OBLIQUE,
               metadata: Optional[Dict[str, str]] = None) -> sitk.Image:
    """A SimpleITK image of a (z, y, x) or (y, x) array with the given geometry and metadata."""
    image = sitk.GetImageFromArray(array)
    dimension = image.GetDimension()
    image.SetSpacing(tuple(spacing)[:dimension])
    image.SetOrigin(tuple(origin)[:dimension])
    if dimension == 3:
        image.SetDirection(tuple(direction))
    for key, value in (metadata or {}).items():
        image.SetMetaData(key, value)
    return image


def sha256(path: Path) -> str:
    """Hex digest of a file's content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def blob_study(shape=(6, 40, 48), dtype=np.int16, seed: int = 0):
    """A textured image with a bright ellipsoid lesion (label 1) and a smaller second structure (label 2)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    lesion = ((y - shape[1] / 2) / (shape[1] / 5)) ** 2 + ((x - shape[2] / 2) / (shape[2] / 5)) ** 2 < 1.0
    lesion &= (z >= 1) & (z < shape[0] - 1)
    second = ((y - shape[1] / 5) ** 2 + (x - shape[2] / 5) ** 2 < 9) & (z == shape[0] // 2)
    image = 300 + 80 * np.sin(x / 3.0) * np.cos(y / 4.0) + rng.normal(0, 15, shape) + 250 * lesion + 120 * second
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = np.clip(np.round(image * (0.35 if info.max < 1000 else 1.0)), info.min, info.max)
    label = (lesion * 1 + second * 2).astype(np.uint8)
    return image.astype(dtype), label


@pytest.fixture
def synthetic_files(tmp_path):
    """Write a synthetic study as image and label files in one format; returns (image path, label path)."""

    def write(extension: str = ".nrrd", dtype=np.int16, metadata: Optional[Dict[str, str]] = None, shape=(6, 40, 48)):
        image, label = blob_study(shape, dtype)
        image_path, label_path = tmp_path / f"study{extension}", tmp_path / f"study_label{extension}"
        sitk.WriteImage(sitk_image(image, metadata=metadata), str(image_path), True)
        sitk.WriteImage(sitk_image(label), str(label_path), True)
        return image_path, label_path

    return write


@pytest.fixture(scope="session")
def sample_files():
    """Paths of the embedded real sample (MNI152 slab and its ventricle label)."""
    from UMedProtectLib.files.sample import sample_paths

    return sample_paths()


def perturbable_region(label, labels, band_width):
    """ROI + contour band per axial slice: the only voxels allowed to change."""
    region = np.zeros(label.shape, bool)
    for z in range(label.shape[0]):
        band, interior = band_and_interior(np.isin(label[z], labels), band_width)
        region[z] = band | interior
    return region
