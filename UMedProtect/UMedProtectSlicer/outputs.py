"""Result nodes: "<name> protected" and "<name> difference" volumes, and the difference colour map."""

from __future__ import annotations

import json

import numpy as np

from .volumes import arrayFromVolumeNode, ijkToRasMatrix, updateVolumeNodeFromArray

DIFFERENCE_COLOR_NODE_NAME = "UMed difference (blue-white-red)"
ROLE_ATTRIBUTE = "UMedProtect.Role"
SOURCE_ATTRIBUTE = "UMedProtect.SourceVolumeID"
# The engine's report (JSON) on the protected node: saved with the scene, so export works after reloading it.
REPORT_ATTRIBUTE = "UMedProtect.Report"


def differenceColorNode(scene):
    """The scene's symmetric blue-white-red colour table (created once): negative blue, zero white, positive red."""
    existing = scene.GetFirstNodeByName(DIFFERENCE_COLOR_NODE_NAME)
    if existing is not None and existing.IsA("vtkMRMLColorTableNode"):
        return existing
    colorNode = scene.CreateNodeByClass("vtkMRMLColorTableNode")
    colorNode.SetName(DIFFERENCE_COLOR_NODE_NAME)
    colorNode.SetTypeToUser()
    colorNode.SetHideFromEditors(False)
    count = 256
    colorNode.SetNumberOfColors(count)
    for index in range(count):
        # t runs from -1 (blue) through 0 (white) to +1 (red); the linear ramp keeps equal steps equally visible.
        t = 2.0 * index / (count - 1) - 1.0
        if t < 0:
            red, green, blue = 1.0 + t, 1.0 + t, 1.0
        else:
            red, green, blue = 1.0, 1.0 - t, 1.0 - t
        colorNode.SetColor(index, f"{t:+.3f}", red, green, blue, 1.0)
    return scene.AddNode(colorNode)


def uniqueName(scene, name: str) -> str:
    """name, or name_1, name_2... when a node already has it (results never replace anything)."""
    if scene.GetFirstNodeByName(name) is None:
        return name
    return scene.GenerateUniqueName(name)


def _inheritTransform(node, inputVolumeNode) -> None:
    """Put a result under the input's parent transform so that both stay aligned in the views."""
    transformId = inputVolumeNode.GetTransformNodeID()
    if transformId:
        node.SetAndObserveTransformNodeID(transformId)


def createProtectedVolume(inputVolumeNode, protectedArray: np.ndarray):
    """A new scalar volume on the input's grid, displayed with the input's window/level and colours."""
    scene = inputVolumeNode.GetScene()
    expected = arrayFromVolumeNode(inputVolumeNode).shape
    if tuple(protectedArray.shape) != tuple(expected):
        raise ValueError(f"protected array has shape {protectedArray.shape}, the input has {expected}")
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode",
                                   uniqueName(scene, f"{inputVolumeNode.GetName()} protected"))
    updateVolumeNodeFromArray(node, protectedArray, ijkToRasMatrix(inputVolumeNode))
    node.CreateDefaultDisplayNodes()
    source = inputVolumeNode.GetDisplayNode()
    target = node.GetDisplayNode()
    if source is not None and target is not None:
        # Same look as the original, so that any visible change is the perturbation and not a display setting.
        target.SetAutoWindowLevel(False)
        target.SetWindowLevel(source.GetWindow(), source.GetLevel())
        if source.GetColorNodeID():
            target.SetAndObserveColorNodeID(source.GetColorNodeID())
    _inheritTransform(node, inputVolumeNode)
    node.SetAttribute(ROLE_ATTRIBUTE, "protected")
    node.SetAttribute(SOURCE_ATTRIBUTE, inputVolumeNode.GetID())
    return node


def createDifferenceVolume(inputVolumeNode, differenceArray: np.ndarray, budgetNative: float):
    """A new float volume (protected - original) shown blue-white-red, +/- budgetNative mapped to full colour."""
    scene = inputVolumeNode.GetScene()
    node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode",
                                   uniqueName(scene, f"{inputVolumeNode.GetName()} difference"))
    updateVolumeNodeFromArray(node, differenceArray.astype(np.float32, copy=False), ijkToRasMatrix(inputVolumeNode))
    node.CreateDefaultDisplayNodes()
    applyDifferenceDisplay(node, budgetNative)
    _inheritTransform(node, inputVolumeNode)
    node.SetAttribute(ROLE_ATTRIBUTE, "difference")
    node.SetAttribute(SOURCE_ATTRIBUTE, inputVolumeNode.GetID())
    return node


def applyDifferenceDisplay(differenceNode, budgetNative: float) -> None:
    """Symmetric window centred on 0: -budget is full blue, +budget full red, unchanged voxels white."""
    scale = float(budgetNative)
    if not np.isfinite(scale) or scale <= 0:
        largest = float(np.abs(arrayFromVolumeNode(differenceNode)).max())
        scale = largest if largest > 0 else 1.0
    display = differenceNode.GetDisplayNode()
    display.SetAndObserveColorNodeID(differenceColorNode(differenceNode.GetScene()).GetID())
    display.SetAutoWindowLevel(False)
    display.SetWindowLevel(2.0 * scale, 0.0)
    display.SetInterpolate(False)


def reportOf(protectedNode) -> dict:
    """The engine report kept on a protected volume (set when the results were loaded); {} without one."""
    return json.loads(protectedNode.GetAttribute(REPORT_ATTRIBUTE) or "{}")
