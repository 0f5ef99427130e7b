"""Export of a protection result through Slicer's storage nodes (.nrrd / .nii.gz) with a JSON sidecar."""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import slicer

from .engine import engineModule
from .errors import UserFacingError
from .labelmaps import exportSegmentsToLabelmapNode
from .metrics import METRIC_ROWS
from .nodes import RemoveAddedNodes
from .versions import collectVersions
from .volumes import ijkToRasMatrix

FORMATS = (".nrrd", ".nii.gz")


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
    if not any(path.name.endswith(ext) for ext in FORMATS):
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


def plannedPaths(folder: Path, baseName: str, fileFormat: str, withDifference: bool, withLabel: bool) -> dict:
    """The files an export will create, by role (the sidecar under "sidecar")."""
    base = safeBaseName(baseName)
    paths = {"protected": folder / f"{base}_protected{fileFormat}"}
    if withDifference:
        paths["difference"] = folder / f"{base}_difference{fileFormat}"
    if withLabel:
        paths["label"] = folder / f"{base}_label{fileFormat}"
    paths["sidecar"] = folder / f"{base}_protected.json"
    return paths


def exportResults(folder: Path, fileFormat: str, inputVolumeNode, protectedNode, report: Mapping[str, Any],
                  differenceNode=None, labelSourceNode=None, segmentIds: Sequence[str] = (),
                  extraVersions: Optional[dict] = None, overwrite: bool = False) -> ExportedFiles:
    """Write the protected volume (and optionally the difference map and the label map) plus a JSON sidecar.

    The label map is written on the volume's grid (segment n of segmentIds -> value n), the form training
    pipelines read. Nothing in the scene changes.
    """
    folder = Path(folder)
    if fileFormat not in FORMATS:
        raise UserFacingError(f"Unknown export format {fileFormat!r}; choose .nrrd or .nii.gz.")
    if not folder.is_dir():
        raise UserFacingError(f"Export folder '{folder}' does not exist; choose an existing folder.")
    paths = plannedPaths(folder, inputVolumeNode.GetName(), fileFormat, differenceNode is not None,
                         labelSourceNode is not None)
    existing = [p.name for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise UserFacingError(f"'{existing[0]}' already exists in '{folder}'; choose another folder or allow overwriting.")

    exported = ExportedFiles()
    exported.files["protected"] = writeVolumeNode(protectedNode, paths["protected"])
    if differenceNode is not None:
        exported.files["difference"] = writeVolumeNode(differenceNode, paths["difference"])
    segmentNames: list = []
    if labelSourceNode is not None:
        if labelSourceNode.IsA("vtkMRMLSegmentationNode"):
            with RemoveAddedNodes(labelSourceNode.GetScene()):
                labelmapNode = exportSegmentsToLabelmapNode(labelSourceNode, inputVolumeNode, segmentIds)
                exported.files["label"] = writeVolumeNode(labelmapNode, paths["label"])
            segmentation = labelSourceNode.GetSegmentation()
            chosen = list(segmentIds) or [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
            segmentNames = [{"label": n + 1, "segment": segmentation.GetSegment(sid).GetName()} for n, sid in enumerate(chosen)]
        else:
            exported.files["label"] = writeVolumeNode(labelSourceNode, paths["label"])

    sha256 = engineModule("reports").sha256_file
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
        "metrics": {key: report.get(key) for key, *_ in METRIC_ROWS if key in report},
        "visibility": report.get("visibility"),
        "warnings": list(report.get("warnings", []) or []),
        "versions": collectVersions(extraVersions),
        "files": {role: {"file": path.name, "sha256": sha256(path)} for role, path in exported.files.items()},
    }
    _writeJson(paths["sidecar"], sidecar)
    exported.sidecar = paths["sidecar"]
    return exported
