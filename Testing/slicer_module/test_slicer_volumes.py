"""Volume node <-> array with oblique, anisotropic geometry, on Slicer's real MRML classes (slicer-core)."""

import numpy as np
import pytest
import SimpleITK as sitk

from slicer_testing import addVolume, lpsToRas, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.export import writeVolumeNode
from UMedProtectSlicer.volumes import (arrayFromVolumeNode, ijkToRasMatrix, readVolumeArray, sameGrid, spacingOf,
                                       updateVolumeNodeFromArray)


@pytest.fixture
def app():
    return makeMrmlApp()


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32, np.float64])
def test_round_trip_keeps_voxels_dtype_and_geometry(app, dtype):
    rng = np.random.default_rng(1)
    array = (rng.normal(0, 300, (7, 11, 13))).astype(dtype)
    geometry = obliqueIjkToRas()
    node = app.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "v")
    updateVolumeNodeFromArray(node, array, geometry)
    back = arrayFromVolumeNode(node)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    assert np.allclose(ijkToRasMatrix(node), geometry, atol=1e-9)
    assert spacingOf(node) == pytest.approx((0.7, 0.9, 2.5))
    # (k, j, i) order: VTK's i axis is the last numpy axis.
    assert node.GetImageData().GetDimensions() == (13, 11, 7)


def test_array_is_a_copy_and_voxel_order_matches_ras_positions(app):
    array = np.arange(2 * 3 * 4, dtype=np.int16).reshape(2, 3, 4)
    geometry = obliqueIjkToRas()
    node = addVolume(app.scene, array, geometry)
    copy = arrayFromVolumeNode(node)
    copy[:] = 0
    assert np.array_equal(arrayFromVolumeNode(node), array)
    # The voxel at array index (k, j, i) sits at IJK-to-RAS @ (i, j, k): compare with the node's own transform.
    k, j, i = 1, 2, 3
    expected = geometry @ np.array([i, j, k, 1.0])
    import vtk
    matrix = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    assert np.allclose(matrix.MultiplyPoint((i, j, k, 1.0)), expected)
    assert arrayFromVolumeNode(node)[k, j, i] == array[k, j, i] == 23


def test_image_data_carries_no_geometry(app):
    node = addVolume(app.scene, np.zeros((2, 2, 2), np.uint8), obliqueIjkToRas())
    assert node.GetImageData().GetOrigin() == (0.0, 0.0, 0.0)
    assert node.GetImageData().GetSpacing() == (1.0, 1.0, 1.0)


def test_rejects_non_3d_arrays(app):
    node = app.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "v")
    with pytest.raises(ValueError):
        updateVolumeNodeFromArray(node, np.zeros((4, 4)), np.eye(4))


def test_same_grid(app):
    geometry = obliqueIjkToRas()
    a = addVolume(app.scene, np.zeros((3, 4, 5), np.int16), geometry)
    b = addVolume(app.scene, np.ones((3, 4, 5), np.uint8), geometry, labelmap=True)
    shifted = geometry.copy()
    shifted[0, 3] += 0.5
    c = addVolume(app.scene, np.zeros((3, 4, 5), np.int16), shifted)
    d = addVolume(app.scene, np.zeros((3, 4, 6), np.int16), geometry)
    assert sameGrid(a, b)
    assert not sameGrid(a, c)
    assert not sameGrid(a, d)


def test_written_file_read_by_simpleitk_has_the_same_voxels_and_geometry(app, tmp_path):
    rng = np.random.default_rng(2)
    array = rng.integers(-1024, 3000, (5, 9, 8)).astype(np.int16)
    geometry = obliqueIjkToRas()
    node = addVolume(app.scene, array, geometry)
    path = writeVolumeNode(node, tmp_path / "v.nrrd")
    image = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(image), array)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    lps = np.eye(4)
    lps[:3, :3] = direction @ np.diag(image.GetSpacing())
    lps[:3, 3] = image.GetOrigin()
    assert np.allclose(lpsToRas(lps), geometry, atol=1e-6)
    voxels, readGeometry = readVolumeArray(path)
    assert np.array_equal(voxels, array) and np.allclose(readGeometry, geometry, atol=1e-6)


def test_sample_study_round_trip(app, sample_files):
    from slicer_testing import loadVolumeFile

    image_path, _ = sample_files
    node = loadVolumeFile(app.scene, image_path, "sample")
    expected = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path)))
    array = arrayFromVolumeNode(node)
    assert np.array_equal(array, expected)
    copy = app.scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "copy")
    updateVolumeNodeFromArray(copy, array, ijkToRasMatrix(node))
    assert sameGrid(node, copy)
    assert np.array_equal(arrayFromVolumeNode(copy), expected)
