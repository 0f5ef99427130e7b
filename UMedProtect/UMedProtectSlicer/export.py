"""Export of a protection result through Slicer's storage nodes (.nrrd / .nii.gz), or as a derived DICOM series
for a volume loaded from DICOM, with a JSON sidecar.

The DICOM series is written by the engine's writer (UMedProtectLib.files.dicom.writer) from the volume's source files,
in Slicer as on slicer-core: Slicer's own DICOM export builds a new series from the subject hierarchy and would
drop what the engine keeps (every source element, private tags, the stored representation).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import numpy as np
import slicer

from .engine import engineModule
from .errors import UserFacingError
from .labelmaps import exportSegmentsToLabelmapNode
from .metrics import sidecarMetrics
from .nodes import RemoveAddedNodes
from .versions import collectVersions
from .volumes import ijkToRasMatrix

DICOM_FORMAT = "DICOM series"
FILE_FORMATS = (".nrrd", ".nii.gz")
FORMATS = FILE_FORMATS + (DICOM_FORMAT,)
# The attribute Slicer's DICOM module sets on a loaded volume: the SOP Instance UIDs of its files.
INSTANCE_UIDS_ATTRIBUTE = "DICOM.instanceUIDs"
# Geometry agreement (mm, direction cosines) between a volume and the DICOM series it came from.
_GEOMETRY_TOLERANCE = 1e-3


@dataclass
class ExportedFiles:
    """Where an export put its files: role ("protected", "difference", "label") -> path, plus the sidecar."""

    files: dict = field(default_factory=dict)
    sidecar: Optional[Path] = None


def safeBaseName(name: str) -> str:
    """A file name stem from a node name: letters, digits, '-', '_' and '.' only."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name.strip()).strip("._")
    return cleaned or "volume"


def _partialPath(path: Path) -> Path:
    """A hidden temporary name beside path that keeps its extension (the writer picks the format from it)."""
    suffix = ".nii.gz" if path.name.endswith(".nii.gz") else path.suffix
    stem = path.name[: -len(suffix)]
    return path.with_name(f".{stem}.partial-{os.getpid()}{suffix}")


def writeVolumeNode(volumeNode, path: Path) -> Path:
    """Write a volume with a standalone storage node (the scene is not changed); temporary name, then rename."""
    path = Path(path)
    if not any(path.name.endswith(ext) for ext in FILE_FORMATS):
        raise UserFacingError(f"Cannot write '{path.name}': choose a .nrrd or .nii.gz file name.")
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetUseCompression(True)
    partial = _partialPath(path)
    storage.SetFileName(str(partial))
    try:
        if not storage.WriteData(volumeNode) or not partial.exists():
            raise UserFacingError(f"Could not write '{path}'; check that the folder is writable and has free space.")
        os.replace(partial, path)
    finally:
        if partial.exists():
            partial.unlink()
    return path


def _writeJson(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON through a temporary file so that a reader never sees half a sidecar."""
    partial = path.with_name(f".{path.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(partial, path)


def plannedPaths(folder: Path, baseName: str, fileFormat: str, withDifference: bool, withLabel: bool,
                 dicomLabel: bool = False) -> dict:
    """The files an export will create, by role (the sidecar under "sidecar"); a DICOM series is a folder, its
    difference map NRRD, its label the source's SEG or RTSTRUCT re-pointed at it (`dicomLabel`), else NRRD."""
    base = safeBaseName(baseName)
    dicom = fileFormat == DICOM_FORMAT
    extension = ".nrrd" if dicom else fileFormat
    paths = {"protected": folder / f"{base}_protected{'' if dicom else fileFormat}"}
    if withDifference:
        paths["difference"] = folder / f"{base}_difference{extension}"
    if withLabel:
        paths["label"] = folder / f"{base}_label{'.dcm' if dicom and dicomLabel else extension}"
    paths["sidecar"] = folder / f"{base}_protected.json"
    return paths


def dicomSourceFiles(node) -> list:
    """The DICOM files a volume or segmentation was loaded from, found through Slicer's DICOM database (the node's
    attribute, else its subject hierarchy item's instance UIDs); empty when there are none."""
    uids = (node.GetAttribute(INSTANCE_UIDS_ATTRIBUTE) or "").split()
    hierarchy = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(node.GetScene()) if not uids else None
    if hierarchy is not None:
        item = hierarchy.GetItemByDataNode(node)
        uids = hierarchy.GetItemUID(item, slicer.vtkMRMLSubjectHierarchyConstants.GetDICOMInstanceUIDName()).split()
    database = getattr(slicer, "dicomDatabase", None)
    if not uids or database is None:
        return []
    files = [database.fileForInstance(uid) for uid in uids]
    return [Path(f) for f in files] if all(files) else []


def writeDicomSeries(volumeNode, protectedNode, report: Mapping[str, Any], files: Sequence[Path], folder: Path,
                     overwrite: bool, label: Optional[tuple] = None) -> Path:
    """Write the protected volume as a derived series of `files` (the volume's source) into the new `folder`, and
    with it `label`, (the SEG or RTSTRUCT file it was loaded from, its target), re-pointed at that series."""
    from .volumes import arrayFromVolumeNode

    errors = engineModule("errors")
    outputs = engineModule("files.transaction")
    writer = engineModule("files.dicom.writer")
    root = Path(os.path.commonpath([str(Path(f).parent) for f in files]))
    try:
        series = engineModule("files.dicom.series").read_series(root, files=files)
    except errors.InputError as error:
        raise UserFacingError(f"Cannot export '{volumeNode.GetName()}' as DICOM: {error}") from None
    image = series.image
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(image.direction, float).reshape(3, 3) @ np.diag(image.spacing_xyz)
    lps[:3, 3] = image.origin
    protected = arrayFromVolumeNode(protectedNode)
    if protected.shape != image.array.shape or not np.allclose(
            np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps, ijkToRasMatrix(volumeNode), atol=_GEOMETRY_TOLERANCE):
        raise UserFacingError(f"'{volumeNode.GetName()}' is not on the grid of the DICOM series it was loaded from "
                              "(resampled or cropped?); export it as .nrrd or .nii.gz.")
    try:
        with outputs.created_folders([t.parent for t in writer.series_targets(series, folder)]), \
                outputs.OutputTransaction(overwrite=overwrite, keep_intact=files) as transaction:
            derived = writer.stage_series(transaction, protected, series, folder,
                                          writer.derivation_description(report))
            if label is not None:
                engineModule("files.dicom.references").stage_rereferenced_label(transaction, *label, derived)
            transaction.commit()
    except errors.InputError as error:
        raise UserFacingError(f"Could not write the DICOM series '{folder}': {error}") from None
    return folder


def _fileRecord(path: Path) -> dict:
    """Name and SHA-256 of an exported file, or of a DICOM series folder (the SHA-256 of its files' hashes)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    return {"file": path.name, "sha256": engineModule("files.reports").file_record(path, files)["sha256"]}


def exportResults(folder: Path, fileFormat: str, inputVolumeNode, protectedNode, report: Mapping[str, Any],
                  differenceNode=None, labelSourceNode=None, segmentIds: Sequence[str] = (),
                  extraVersions: Optional[dict] = None, overwrite: bool = False,
                  dicomFiles: Optional[Sequence[Path]] = None, dicomLabelFiles: Optional[Sequence[Path]] = None
                  ) -> ExportedFiles:
    """Write the protected volume (and optionally the difference map and the label map) plus a JSON sidecar.

    The label map is written on the volume's grid (segment n of segmentIds -> value n), the form training
    pipelines read. As a "DICOM series", the protected volume is written as a derived series of the files it was
    loaded from (`dicomFiles`, else found through Slicer's DICOM database), and a segmentation loaded from a DICOM
    SEG or RTSTRUCT (`dicomLabelFiles`, else found the same way) as that file, whole, re-pointed at the derived
    series, so that a PACS attaches it there. Nothing in the scene changes.
    """
    folder = Path(folder)
    if fileFormat not in FORMATS:
        raise UserFacingError(f"Unknown export format {fileFormat!r}; choose .nrrd, .nii.gz or {DICOM_FORMAT}.")
    if fileFormat == DICOM_FORMAT:
        dicomFiles = list(dicomFiles or dicomSourceFiles(inputVolumeNode))
        if not dicomFiles:
            raise UserFacingError(f"'{inputVolumeNode.GetName()}' was not loaded from DICOM (through the DICOM "
                                  "module); export it as .nrrd or .nii.gz.")
    labelFiles = []
    if fileFormat == DICOM_FORMAT and labelSourceNode is not None:
        labelFiles = list(dicomLabelFiles or dicomSourceFiles(labelSourceNode))
        if len(labelFiles) > 1:
            raise UserFacingError(f"'{labelSourceNode.GetName()}' was loaded from {len(labelFiles)} DICOM files; "
                                  "export a segmentation loaded from one SEG or RTSTRUCT.")
    if not folder.is_dir():
        raise UserFacingError(f"Export folder '{folder}' does not exist; choose an existing folder.")
    paths = plannedPaths(folder, inputVolumeNode.GetName(), fileFormat, differenceNode is not None,
                         labelSourceNode is not None, dicomLabel=bool(labelFiles))
    existing = [p.name for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise UserFacingError(f"'{existing[0]}' already exists in '{folder}'; choose another folder or allow "
                              "overwriting.")

    exported = ExportedFiles()
    if fileFormat == DICOM_FORMAT:
        label = (Path(labelFiles[0]), paths["label"]) if labelFiles else None
        exported.files["protected"] = writeDicomSeries(inputVolumeNode, protectedNode, report, dicomFiles,
                                                       paths["protected"], overwrite, label)
        if label is not None:
            exported.files["label"] = paths["label"]
    else:
        exported.files["protected"] = writeVolumeNode(protectedNode, paths["protected"])
    if differenceNode is not None:
        exported.files["difference"] = writeVolumeNode(differenceNode, paths["difference"])
    segmentNames: list = []
    labelWritten = "label" in exported.files  # a DICOM label goes with its series
    if labelSourceNode is not None and labelSourceNode.IsA("vtkMRMLSegmentationNode"):
        if not labelWritten:
            with RemoveAddedNodes(labelSourceNode.GetScene()):
                labelmapNode = exportSegmentsToLabelmapNode(labelSourceNode, inputVolumeNode, segmentIds)
                exported.files["label"] = writeVolumeNode(labelmapNode, paths["label"])
        segmentation = labelSourceNode.GetSegmentation()
        chosen = list(segmentIds) or [segmentation.GetNthSegmentID(i)
                                      for i in range(segmentation.GetNumberOfSegments())]
        segmentNames = [{"label": n + 1, "segment": segmentation.GetSegment(sid).GetName()}
                        for n, sid in enumerate(chosen)]
    elif labelSourceNode is not None and not labelWritten:
        exported.files["label"] = writeVolumeNode(labelSourceNode, paths["label"])

    sidecar = {
        "description": "Volume protected with UMed unlearnable perturbations (UMedProtect for 3D Slicer).",
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {
            "volume": inputVolumeNode.GetName(),
            "label_source": labelSourceNode.GetName() if labelSourceNode is not None else None,
            "labels": segmentNames,
        },
        "geometry": {
            "dimensions_ijk": list(protectedNode.GetImageData().GetDimensions()),
            "spacing_mm": list(protectedNode.GetSpacing()),
            "ijk_to_ras": ijkToRasMatrix(protectedNode).tolist(),
        },
        "settings": report.get("settings", {}),
        "metrics": sidecarMetrics(report),
        "visibility": report.get("visibility"),
        "report": dict(report),  # everything the command line's report carries: per-window figures, texture, evidence
        "warnings": list(report.get("warnings", []) or []),
        "versions": collectVersions(extraVersions),
        "files": {role: _fileRecord(path) for role, path in exported.files.items()},
    }
    _writeJson(paths["sidecar"], sidecar)
    exported.sidecar = paths["sidecar"]
    return exported
