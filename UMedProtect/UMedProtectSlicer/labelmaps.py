"""Segmentation (or label map) -> label map on the volume's voxel grid, the form the engine protects."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import slicer
import vtk

from .engine import engineSettings
from .errors import UserFacingError
from .nodes import RemoveAddedNodes, removeNodeWithDisplay
from .volumes import arrayFromVolumeNode, sameGrid


def allSegmentIds(segmentationNode) -> list[str]:
    """IDs of every segment, in the segmentation's order."""
    ids = vtk.vtkStringArray()
    segmentationNode.GetSegmentation().GetSegmentIDs(ids)
    return [ids.GetValue(index) for index in range(ids.GetNumberOfValues())]


def exportSegmentsToLabelmapNode(segmentationNode, referenceVolumeNode, segmentIds: Sequence[str] = (),
                                 name: str = "") -> "slicer.vtkMRMLLabelMapVolumeNode":
    """A new label map node on the reference volume's grid; segment n of segmentIds gets label value n (1-based).

    The node (and a colour table Slicer adds for it) go into the segmentation's scene: call it inside
    RemoveAddedNodes to have them removed.
    """
    scene = segmentationNode.GetScene()
    chosen = list(segmentIds) or allSegmentIds(segmentationNode)
    known = set(allSegmentIds(segmentationNode))
    missing = [segmentId for segmentId in chosen if segmentId not in known]
    if missing:
        raise UserFacingError(f"Segment(s) {', '.join(missing)} are not in segmentation "
                              f"'{segmentationNode.GetName()}'.")
    if not chosen:
        raise UserFacingError(f"Segmentation '{segmentationNode.GetName()}' has no segments; draw the region to "
                              "protect first.")
    idArray = vtk.vtkStringArray()
    for segmentId in chosen:
        idArray.InsertNextValue(segmentId)
    labelmapNode = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", name or f"{segmentationNode.GetName()} label")
    # EXTENT_REFERENCE_GEOMETRY: the label map gets exactly the reference volume's dimensions and IJK-to-RAS.
    ok = slicer.vtkSlicerSegmentationsModuleLogic.ExportSegmentsToLabelmapNode(
        segmentationNode, idArray, labelmapNode, referenceVolumeNode,
        slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY)
    if not ok:
        removeNodeWithDisplay(labelmapNode)
        raise UserFacingError(f"Could not convert segmentation '{segmentationNode.GetName()}' to a label map on "
                              f"the grid of volume '{referenceVolumeNode.GetName()}'.")
    return labelmapNode


def labelmapNodeOnVolumeGrid(volumeNode, labelSourceNode,
                             segmentIds: Sequence[str] = ()) -> "slicer.vtkMRMLLabelMapVolumeNode":
    """The label map node matching volumeNode voxel for voxel, from a segmentation or a label map node.

    A segmentation is converted once, onto the volume's grid, into a new node of its scene: call it inside
    RemoveAddedNodes to have that node removed. A label map must already share the grid (no silent resampling
    of the ground truth) and is returned as it is. Raises UserFacingError when it holds no labelled voxel.
    """
    if labelSourceNode.IsA("vtkMRMLSegmentationNode"):
        labelmapNode = exportSegmentsToLabelmapNode(labelSourceNode, volumeNode, segmentIds)
        source = "the chosen segments" if segmentIds else f"segmentation '{labelSourceNode.GetName()}'"
    elif labelSourceNode.IsA("vtkMRMLLabelMapVolumeNode"):
        if not sameGrid(volumeNode, labelSourceNode):
            raise UserFacingError(f"Label map '{labelSourceNode.GetName()}' is not on the grid of volume "
                                  f"'{volumeNode.GetName()}'; resample it to the volume or use a segmentation.")
        labelmapNode = labelSourceNode
        source = f"label map '{labelSourceNode.GetName()}'"
    else:
        raise UserFacingError(f"'{labelSourceNode.GetName()}' is neither a segmentation nor a label map.")
    if not np.any(arrayFromVolumeNode(labelmapNode) > 0):
        raise UserFacingError(f"There is no region to protect: {source} is empty inside volume "
                              f"'{volumeNode.GetName()}'.")
    return labelmapNode


def regionMask(volumeNode, labelSourceNode, segmentIds: Sequence[str] = (), labelValues: str = "") -> np.ndarray:
    """The region to protect on the volume's grid, as the engine gets it (the chosen segments or label values)."""
    with RemoveAddedNodes(volumeNode.GetScene()):
        labels = arrayFromVolumeNode(labelmapNodeOnVolumeGrid(volumeNode, labelSourceNode, segmentIds))
    chosen = engineSettings.parse_labels(labelValues) if labelSourceNode.IsA("vtkMRMLLabelMapVolumeNode") else None
    return np.isin(labels, chosen) if chosen else labels > 0
