"""What a study's own header says it is, for method/modality.py's header rule: a DICOM series' Modality and rescale,
or a NIfTI file's rescale when it is a CT's.

Only headers that name the modality or carry a CT's calibration to HU count; a header that says nothing (an NRRD, a
NIfTI without rescale) leaves the study to the air rule.
"""

from __future__ import annotations

from typing import Mapping, Optional

from ..method.modality import HeaderModality

# A CT's DICOM rescale to HU as converters (dcm2niix) keep it in a NIfTI's scl_slope and scl_inter: the stored values
# shifted so that 0 stored is -1024 HU, just below air. Taken as a CT's because that offset is HU's calibration; an MR,
# PET or microscopy converter has no reason to write it (NIfTI itself names no modality).
CT_NIFTI_RESCALE = (1.0, -1024.0)


def dicom_modality(header) -> Optional[HeaderModality]:
    """What a DICOM image header (pydicom) says: a CT in HU for Modality CT with a rescale to HU; None without a
    Modality."""
    modality = str(header.get("Modality", "") or "").upper()
    if not modality:
        return None
    if modality != "CT":
        return HeaderModality(False, f"DICOM Modality {modality}")
    if header.get("RescaleIntercept") in (None, ""):
        return HeaderModality(False, "DICOM Modality CT without a rescale intercept, so its values are the scanner's "
                                     "stored values, not HU")
    # A CT image's Rescale Type is required only when it is not HU (DICOM PS3.3 C.8.2.1): absent means HU.
    kind = str(header.get("RescaleType", "") or "HU")
    if kind.upper() != "HU":
        return HeaderModality(False, f"DICOM Modality CT with a rescale to {kind!r}, not HU")
    slope, intercept = float(header.get("RescaleSlope", 1.0) or 1.0), float(header.RescaleIntercept)
    return HeaderModality(True, f"DICOM Modality CT with a rescale to HU (intercept {intercept:g}, slope {slope:g})")


def file_modality(metadata: Mapping[str, str]) -> Optional[HeaderModality]:
    """What an image file's metadata (SimpleITK's dictionary) says: CT in HU for a NIfTI with a CT's rescale."""
    try:
        rescale = (float(metadata["scl_slope"]), float(metadata["scl_inter"]))
    except (KeyError, ValueError):
        return None
    if rescale != CT_NIFTI_RESCALE:
        return None
    return HeaderModality(True, f"NIfTI rescale slope {rescale[0]:g}, intercept {rescale[1]:g}: a CT's DICOM rescale "
                                "to HU, as converters such as dcm2niix keep it")
