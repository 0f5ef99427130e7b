"""Support for the slicer-core tests: a real MRML scene with the logics the module uses, and scene builders."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = ROOT / "UMedProtect"
# Slicer puts a scripted module's folder on sys.path; do the same so that `import UMedProtectSlicer` works.
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))

import slicer  # noqa: E402  (slicer-core: real MRML and module logics, no Qt)

from UMedProtectSlicer.volumes import updateVolumeNodeFromArray  # noqa: E402


@dataclass
class MrmlApp:
    """A scene wired like Slicer's: application, colour, segmentation, volume and layout logics."""

    scene: object
    appLogic: object
    segmentationsLogic: object
    layoutLogic: object
    logics: list

    @property
    def layoutNode(self):
        return self.layoutLogic.GetLayoutNode()

    def createSliceLogics(self) -> list:
        """Slice logics for every slice node, as Slicer's layout manager creates with its views."""
        created = []
        known = {logic.GetSliceNode().GetID() for logic in self.logics
                 if logic.IsA("vtkMRMLSliceLogic") and logic.GetSliceNode()}
        for index in range(self.scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
            sliceNode = self.scene.GetNthNodeByClass(index, "vtkMRMLSliceNode")
            if sliceNode.GetID() in known:
                continue
            logic = slicer.vtkMRMLSliceLogic()
            logic.SetMRMLApplicationLogic(self.appLogic)
            logic.SetMRMLScene(self.scene)
            logic.SetSliceNode(sliceNode)
            self.logics.append(logic)
            created.append(logic)
        return created

    def sliceLogic(self, layoutName: str):
        for logic in self.logics:
            if (logic.IsA("vtkMRMLSliceLogic") and logic.GetSliceNode()
                    and logic.GetSliceNode().GetLayoutName() == layoutName):
                return logic
        return None


def makeMrmlApp() -> MrmlApp:
    """A fresh scene with the real logics registered (what Slicer does at start-up, minus Qt)."""
    scene = slicer.vtkMRMLScene()
    appLogic = slicer.vtkSlicerApplicationLogic()
    appLogic.SetMRMLScene(scene)
    colorLogic = slicer.vtkSlicerColorLogic()
    colorLogic.SetMRMLApplicationLogic(appLogic)
    colorLogic.SetMRMLScene(scene)
    appLogic.SetColorLogic(colorLogic)
    segmentationsLogic = slicer.vtkSlicerSegmentationsModuleLogic()
    volumesLogic = slicer.vtkSlicerVolumesLogic()
    layoutLogic = slicer.vtkMRMLLayoutLogic()
    linkLogic = slicer.vtkMRMLSliceLinkLogic()
    for logic in (segmentationsLogic, volumesLogic, layoutLogic, linkLogic):
        logic.SetMRMLApplicationLogic(appLogic)
        logic.SetMRMLScene(scene)
    app = MrmlApp(scene, appLogic, segmentationsLogic, layoutLogic, [colorLogic, volumesLogic, linkLogic])
    app.createSliceLogics()
    return app


def obliqueIjkToRas(spacing=(0.7, 0.9, 2.5), angles=(0.35, -0.2, 0.15), origin=(12.5, -30.0, 7.25)) -> np.ndarray:
    """An IJK-to-RAS matrix with rotations about all three axes and anisotropic voxels."""
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ ry @ rx @ np.diag(spacing)
    matrix[:3, 3] = origin
    return matrix


def addVolume(scene, array: np.ndarray, ijkToRas: np.ndarray, name: str = "Study", labelmap: bool = False):
    """A scalar (or label map) volume node in the scene with display nodes, like a loaded file."""
    className = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(className, name)
    updateVolumeNodeFromArray(node, array, ijkToRas)
    node.CreateDefaultDisplayNodes()
    return node


def addSegmentationFromLabels(app: MrmlApp, labels: np.ndarray, ijkToRas: np.ndarray, name: str = "Segmentation"):
    """A segmentation node with one segment per label value (imported the way Slicer imports label maps)."""
    labelmap = addVolume(app.scene, labels, ijkToRas, name=f"{name} source", labelmap=True)
    segmentation = app.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", name)
    segmentation.CreateDefaultDisplayNodes()
    if not app.segmentationsLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation):
        raise RuntimeError("label map import failed")
    for index in reversed(range(labelmap.GetNumberOfDisplayNodes())):
        app.scene.RemoveNode(labelmap.GetNthDisplayNode(index))
    app.scene.RemoveNode(labelmap)
    return segmentation


def loadVolumeFile(scene, path: Path, name: str, labelmap: bool = False):
    """Load a volume file into the scene through Slicer's storage node (how Slicer reads NRRD/NIfTI)."""
    className = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = scene.AddNewNodeByClass(className, name)
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        raise RuntimeError(f"could not read {path}")
    node.CreateDefaultDisplayNodes()
    return node


def loadSampleStudy(app: MrmlApp, sampleFiles, name: str = "sample"):
    """The sample image, its label map and a segmentation imported from it, loaded the way Slicer loads files."""
    imagePath, labelPath = sampleFiles
    volume = loadVolumeFile(app.scene, imagePath, name)
    labelmap = loadVolumeFile(app.scene, labelPath, f"{name} label", labelmap=True)
    segmentation = app.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{name} segmentation")
    if not app.segmentationsLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation):
        raise RuntimeError("label map import failed")
    return volume, labelmap, segmentation


def lpsToRas(matrix: np.ndarray) -> np.ndarray:
    """Convert a 4x4 LPS index-to-world matrix (NRRD, ITK) to RAS (Slicer)."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ matrix
