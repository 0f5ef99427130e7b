"""Segmentation -> label map on the volume grid (vtkSlicerSegmentationsModuleLogic), on real MRML classes."""

import numpy as np
import pytest

from slicer_testing import addSegmentationFromLabels, addVolume, loadSampleStudy, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.labelmaps import allSegmentIds, exportSegmentsToLabelmapNode, labelmapNodeOnVolumeGrid
from UMedProtectSlicer.nodes import RemoveAddedNodes, removeNodeWithDisplay
from UMedProtectSlicer.volumes import arrayFromVolumeNode, ijkToRasMatrix, sameGrid


def labelArrayOnVolumeGrid(volume, labelSource, segmentIds=()) -> np.ndarray:
    """The voxels of labelmapNodeOnVolumeGrid's node, converted inside RemoveAddedNodes as job.prepare() does."""
    with RemoveAddedNodes(labelSource.GetScene()):
        return arrayFromVolumeNode(labelmapNodeOnVolumeGrid(volume, labelSource, segmentIds))


def twoStructures(shape=(9, 20, 18)):
    labels = np.zeros(shape, np.uint8)
    labels[2:6, 4:11, 3:9] = 1
    labels[5:8, 12:17, 10:15] = 2
    return labels


@pytest.fixture
def study():
    app = makeMrmlApp()
    geometry = obliqueIjkToRas()
    labels = twoStructures()
    volume = addVolume(app.scene, np.random.default_rng(0).integers(0, 500, labels.shape).astype(np.int16), geometry)
    segmentation = addSegmentationFromLabels(app, labels, geometry)
    return app, volume, segmentation, labels


def test_all_segments_give_the_source_labels_on_the_volume_grid(study):
    app, volume, segmentation, labels = study
    nodes = app.scene.GetNumberOfNodes()
    result = labelArrayOnVolumeGrid(volume, segmentation)
    assert result.shape == labels.shape
    assert np.array_equal(result, labels)
    assert app.scene.GetNumberOfNodes() == nodes, "the temporary label map node was left in the scene"


def test_chosen_segments_are_numbered_in_the_given_order(study):
    _, volume, segmentation, labels = study
    first, second = allSegmentIds(segmentation)
    only_second = labelArrayOnVolumeGrid(volume, segmentation, [second])
    assert np.array_equal(only_second, (labels == 2).astype(np.uint8))
    swapped = labelArrayOnVolumeGrid(volume, segmentation, [second, first])
    assert np.array_equal(swapped, np.where(labels == 2, 1, np.where(labels == 1, 2, 0)))


def test_exported_node_has_the_reference_geometry(study):
    app, volume, segmentation, _ = study
    node = exportSegmentsToLabelmapNode(segmentation, volume)
    assert sameGrid(node, volume)
    removeNodeWithDisplay(node)


def test_segmentation_drawn_on_another_grid_is_resampled_onto_the_volume(study):
    app, volume, _, _ = study
    # Drawn on a grid with twice the voxel size and the same origin: coarse voxel c lies at fine voxel 2c and
    # covers fine voxels 2c-1..2c+1 (the outer ones only half).
    coarse = ijkToRasMatrix(volume).copy()
    coarse[:3, :3] = coarse[:3, :3] * 2.0
    coarse_labels = np.zeros((5, 10, 9), np.uint8)
    coarse_labels[1:3, 2:6, 3:6] = 1
    segmentation = addSegmentationFromLabels(app, coarse_labels, coarse, name="coarse")
    result = labelArrayOnVolumeGrid(volume, segmentation)
    assert result.shape == arrayFromVolumeNode(volume).shape
    # Fully covered fine voxels are labelled, voxels beyond the half-covered rim are not.
    assert result[2:5, 4:11, 6:11].all()
    envelope = np.zeros_like(result, dtype=bool)
    envelope[1:6, 3:12, 5:12] = True
    assert not result[~envelope].any()


def test_errors_are_one_sentence_and_leave_the_scene_unchanged(study):
    app, volume, segmentation, labels = study
    nodes = app.scene.GetNumberOfNodes()
    with pytest.raises(UserFacingError, match="not in segmentation"):
        labelArrayOnVolumeGrid(volume, segmentation, ["no-such-segment"])
    empty = app.scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "empty")
    with pytest.raises(UserFacingError, match="no segments"):
        labelArrayOnVolumeGrid(volume, empty)
    # A segment that lies entirely outside the volume: nothing to protect inside it.
    far = ijkToRasMatrix(volume).copy()
    far[:3, 3] += 500.0
    outside = addSegmentationFromLabels(app, labels, far, name="outside")
    with pytest.raises(UserFacingError, match="no region to protect"):
        labelArrayOnVolumeGrid(volume, outside)
    removeNodeWithDisplay(empty)
    removeNodeWithDisplay(outside)
    assert app.scene.GetNumberOfNodes() == nodes


def test_label_map_source_must_share_the_grid(study):
    app, volume, _, labels = study
    same = addVolume(app.scene, labels, ijkToRasMatrix(volume), name="lm", labelmap=True)
    assert labelmapNodeOnVolumeGrid(volume, same) is same, "a label map on the grid needs no conversion"
    assert np.array_equal(labelArrayOnVolumeGrid(volume, same), labels)
    moved = ijkToRasMatrix(volume).copy()
    moved[2, 3] += 1.0
    other = addVolume(app.scene, labels, moved, name="lm2", labelmap=True)
    with pytest.raises(UserFacingError, match="not on the grid"):
        labelArrayOnVolumeGrid(volume, other)
    zero = addVolume(app.scene, np.zeros_like(labels), ijkToRasMatrix(volume), name="lm3", labelmap=True)
    with pytest.raises(UserFacingError, match="no region to protect"):
        labelArrayOnVolumeGrid(volume, zero)


def test_sample_study_label_survives_segmentation_round_trip(sample_files):
    app = makeMrmlApp()
    volume, labelmap, segmentation = loadSampleStudy(app, sample_files)
    expected = arrayFromVolumeNode(labelmap)
    assert expected.any()
    result = labelArrayOnVolumeGrid(volume, segmentation)
    assert np.array_equal(result, expected)
