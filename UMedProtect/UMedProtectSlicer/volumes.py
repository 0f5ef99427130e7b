"""Scalar volume node <-> numpy array, keeping the IJK-to-RAS geometry."""

from __future__ import annotations

import numpy as np
import vtk
from vtk.util import numpy_support


def ijkToRasMatrix(volumeNode) -> np.ndarray:
    """The node's 4x4 IJK-to-RAS matrix (spacing, directions and origin together)."""
    matrix = vtk.vtkMatrix4x4()
    volumeNode.GetIJKToRASMatrix(matrix)
    return np.array([[matrix.GetElement(r, c) for c in range(4)] for r in range(4)])


def setIjkToRasMatrix(volumeNode, ijkToRas: np.ndarray) -> None:
    """Set spacing, directions and origin of a node from a 4x4 IJK-to-RAS matrix."""
    matrix = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            matrix.SetElement(r, c, float(ijkToRas[r, c]))
    volumeNode.SetIJKToRASMatrix(matrix)


def spacingOf(volumeNode) -> tuple[float, float, float]:
    """Voxel size (i, j, k) in mm, the (x, y, z) order the engine expects."""
    return tuple(float(s) for s in volumeNode.GetSpacing())


def arrayFromVolumeNode(volumeNode) -> np.ndarray:
    """A copy of the voxels as a (k, j, i) array: the (z, y, x) order of SimpleITK and the engine."""
    imageData = volumeNode.GetImageData()
    if imageData is None:
        raise ValueError(f"volume {volumeNode.GetName()!r} has no image data")
    if imageData.GetNumberOfScalarComponents() != 1:
        raise ValueError(f"volume {volumeNode.GetName()!r} has several components; choose a scalar volume")
    i, j, k = imageData.GetDimensions()
    flat = numpy_support.vtk_to_numpy(imageData.GetPointData().GetScalars())
    return np.array(flat, copy=True).reshape(k, j, i)


def updateVolumeNodeFromArray(volumeNode, array: np.ndarray, ijkToRas: np.ndarray | None = None) -> None:
    """Replace the node's voxels by a (k, j, i) array (dtype kept) and optionally its geometry."""
    if array.ndim != 3:
        raise ValueError(f"expected a 3D (k, j, i) array, got shape {array.shape}")
    contiguous = np.ascontiguousarray(array)
    scalars = numpy_support.numpy_to_vtk(contiguous.ravel(), deep=True)
    imageData = vtk.vtkImageData()
    k, j, i = contiguous.shape
    imageData.SetDimensions(i, j, k)
    imageData.GetPointData().SetScalars(scalars)
    # Geometry lives in the node (IJKToRAS), never in vtkImageData, as Slicer requires.
    imageData.SetOrigin(0.0, 0.0, 0.0)
    imageData.SetSpacing(1.0, 1.0, 1.0)
    wasModifying = volumeNode.StartModify()
    if ijkToRas is not None:
        setIjkToRasMatrix(volumeNode, ijkToRas)
    volumeNode.SetAndObserveImageData(imageData)
    volumeNode.EndModify(wasModifying)


def sameGrid(nodeA, nodeB, tolerance: float = 1e-4) -> bool:
    """True when two volumes have the same dimensions and IJK-to-RAS geometry (within tolerance, in mm)."""
    if nodeA.GetImageData() is None or nodeB.GetImageData() is None:
        return False
    if tuple(nodeA.GetImageData().GetDimensions()) != tuple(nodeB.GetImageData().GetDimensions()):
        return False
    return bool(np.allclose(ijkToRasMatrix(nodeA), ijkToRasMatrix(nodeB), atol=tolerance))


def readVolumeArray(path) -> tuple[np.ndarray, np.ndarray]:
    """(voxels (k, j, i), IJK-to-RAS) of a volume file, read with Slicer's reader into a node outside any scene."""
    import slicer

    node = slicer.vtkMRMLScalarVolumeNode()
    storage = slicer.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(path))
    if not storage.ReadData(node):
        raise ValueError(f"could not read volume file {path}")
    return arrayFromVolumeNode(node), ijkToRasMatrix(node)
