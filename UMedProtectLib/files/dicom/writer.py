"""Writing a protected volume as a new derived DICOM series that keeps every element of its source series.

Each source file is copied element for element (patient, study, equipment, geometry, window presets, private
tags) with only the pixels that protection changed replaced, in the source's own stored representation: the
change in rescaled units (HU for CT) is a whole number of rescale slopes (protect()'s `stored_step`, so that its
report describes these values), written as that many stored units within the stored range (BitsStored,
signedness); every unchanged pixel keeps its bytes. The copy is marked as derived: new Series and SOP Instance
UIDs (the Study stays), ImageType DERIVED\\SECONDARY, a DerivationDescription naming the tool, version, design
and budget, the SeriesDescription suffixed, a SourceImageSequence pointing at the source image, and the
Smallest/Largest Image Pixel Value updated where present. Nothing is removed or de-identified: that is a separate step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping

import numpy as np

from ..transaction import OutputTransaction
from . import save_dataset
from .series import DicomSeries

SUFFIX = " [UMed protected]"
# Value representation lengths: SeriesDescription is LO (64 characters), DerivationDescription ST (1024).
_LO, _ST = 64, 1024


def derivation_description(report: Mapping[str, Any]) -> str:
    """What made the series: tool, version, design and budget, and that it is not de-identified."""
    from ... import __version__

    settings = report.get("settings") or {}
    return (f"UMedProtect {__version__}: UMed protective perturbation, design {settings.get('design')}, budget "
            f"{report.get('epsilon_given')} (L-infinity <= {report.get('epsilon_native', 0.0):.6g} rescaled units "
            f"in the ROI and a {settings.get('band_width')}-pixel contour band); not de-identified")[:_ST]


def _stored_range(header) -> tuple:
    """The smallest and largest value the pixels can store (BitsStored, PixelRepresentation)."""
    bits = int(header.BitsStored)
    if int(header.PixelRepresentation) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def _raw_dtype(header) -> np.dtype:
    """The little-endian numpy type of one stored pixel (BitsAllocated, PixelRepresentation)."""
    kind = "i" if int(header.PixelRepresentation) == 1 else "u"
    return np.dtype(f"<{kind}{int(header.BitsAllocated) // 8}")


def _replace_pixels(dataset, change: np.ndarray) -> None:
    """Add `change` (stored units, integers) to the pixels where it is not 0, clipped to the stored range."""
    changed = change != 0
    if not changed.any():
        return
    low, high = _stored_range(dataset)
    stored = dataset.pixel_array.astype(np.int64)
    buffer = bytearray(dataset.PixelData)
    raw = np.frombuffer(buffer, dtype=_raw_dtype(dataset), count=stored.size).reshape(stored.shape)
    new = np.clip(stored + change.astype(np.int64), low, high)
    raw[changed] = new[changed].astype(raw.dtype)  # unchanged pixels keep their bytes, unused high bits included
    dataset.PixelData = bytes(buffer)
    for keyword, pick in (("SmallestImagePixelValue", np.min), ("LargestImagePixelValue", np.max)):
        if keyword in dataset:
            setattr(dataset, keyword, int(pick(np.where(changed, new, stored))))


def _mark_derived(dataset, series_uid: str, derivation: str) -> None:
    """New UIDs, DERIVED\\SECONDARY, the derivation, the suffixed description and a reference to the source."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    source = Dataset()
    source.ReferencedSOPClassUID = dataset.SOPClassUID
    source.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SourceImageSequence = Sequence([source])
    dataset.SOPInstanceUID = generate_uid()
    if getattr(dataset, "file_meta", None) is not None and "MediaStorageSOPInstanceUID" in dataset.file_meta:
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    dataset.SeriesInstanceUID = series_uid
    kind = list(dataset.ImageType) if "ImageType" in dataset else []
    dataset.ImageType = ["DERIVED", "SECONDARY"] + [str(v) for v in kind[2:]]
    dataset.DerivationDescription = derivation
    dataset.SeriesDescription = suffixed_description(dataset)


def suffixed_description(dataset) -> str:
    """The dataset's SeriesDescription with SUFFIX, within its 64 characters."""
    description = str(dataset.get("SeriesDescription", "") or "")
    # A source without a description gets the suffix alone, not one starting with a space.
    return (description[: _LO - len(SUFFIX)] + SUFFIX).strip()


@dataclass(frozen=True)
class DerivedSeries:
    """What a derived series is called: its Series Instance UID and, by source SOP Instance UID, its instances'."""

    series_uid: str
    source_series_uid: str
    instances: Dict[str, str] = field(default_factory=dict)


def series_targets(series: DicomSeries, folder: Path) -> List[Path]:
    """The files `stage_series` writes: each slice file's path relative to the series' root, under `folder`."""
    return [Path(folder) / path.relative_to(series.root) for path in series.files]


def stage_series(transaction: OutputTransaction, protected: np.ndarray, series: DicomSeries, folder: Path,
                 derivation: str) -> DerivedSeries:
    """Write the protected voxels (rescaled units, on the series' grid) as a derived series into `transaction`.

    Each slice file appears at `folder` / its path relative to the series' root; the folders must exist. Returns
    the new series' UIDs, which a SEG or RTSTRUCT of the source is re-pointed to (references.py).
    """
    from pydicom import dcmread
    from pydicom.uid import generate_uid

    original = series.image.array
    protected = np.asarray(protected).reshape(original.shape)
    derived = DerivedSeries(generate_uid(), series.series_uid)
    for z, (path, target) in enumerate(zip(series.files, series_targets(series, folder))):
        dataset = dcmread(path)
        # Rounded, not truncated: the change is already whole slopes, up to the float rounding of the division.
        change = np.rint((protected[z].astype(np.float64) - original[z].astype(np.float64)) / series.slope)
        _replace_pixels(dataset, change)
        source_uid = str(dataset.SOPInstanceUID)
        _mark_derived(dataset, derived.series_uid, derivation)
        derived.instances[source_uid] = str(dataset.SOPInstanceUID)
        save_dataset(dataset, transaction.stage(target))
    return derived
