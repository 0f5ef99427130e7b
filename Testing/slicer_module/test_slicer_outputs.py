"""Result nodes (protected, difference, colour map, metrics table) on Slicer's real MRML classes."""

import numpy as np
import pytest

from slicer_testing import addVolume, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.metrics import createMetricsTable, metricRows
from UMedProtectSlicer.nodes import RemoveAddedNodes, nodeIds, removeNodeWithDisplay
from UMedProtectSlicer.outputs import (DIFFERENCE_COLOR_NODE_NAME, ROLE_ATTRIBUTE, SOURCE_ATTRIBUTE,
                                       createDifferenceVolume, createProtectedVolume, differenceColorNode)
from UMedProtectSlicer.volumes import arrayFromVolumeNode, ijkToRasMatrix

REPORT = {"psnr_db": 51.234, "psnr_roi_db": 40.5, "ssim": 0.99871, "ssim_roi_slices": 0.991, "linf": 4 / 255,
          "linf_native": 23.5, "epsilon_native": 23.5, "changed_fraction": 0.01234, "roi_voxels": 812,
          "runtime_s": 12.3, "device": "cpu", "mode": "fit", "warnings": ["budget is small against the contrast"]}


@pytest.fixture
def study():
    app = makeMrmlApp()
    rng = np.random.default_rng(3)
    image = rng.integers(-1000, 2000, (6, 10, 12)).astype(np.int16)
    volume = addVolume(app.scene, image, obliqueIjkToRas(), name="CT chest")
    volume.GetDisplayNode().SetAutoWindowLevel(False)
    volume.GetDisplayNode().SetWindowLevel(400, 40)
    return app, volume, image


def test_protected_volume_is_new_and_matches_the_input(study):
    app, volume, image = study
    transform = app.scene.AddNewNodeByClass("vtkMRMLLinearTransformNode", "registration")
    volume.SetAndObserveTransformNodeID(transform.GetID())
    protected = image + 3
    node = createProtectedVolume(volume, protected)
    assert node.GetID() != volume.GetID()
    assert node.GetName() == "CT chest protected"
    assert np.array_equal(arrayFromVolumeNode(node), protected)
    assert np.array_equal(arrayFromVolumeNode(volume), image), "the input was changed"
    assert np.allclose(ijkToRasMatrix(node), ijkToRasMatrix(volume))
    assert (node.GetDisplayNode().GetWindow(), node.GetDisplayNode().GetLevel()) == (400, 40)
    assert node.GetTransformNodeID() == transform.GetID()
    assert node.GetAttribute(ROLE_ATTRIBUTE) == "protected"
    assert node.GetAttribute(SOURCE_ATTRIBUTE) == volume.GetID()
    # A second run gets its own node; nothing is replaced.
    again = createProtectedVolume(volume, protected)
    assert again.GetName() != node.GetName() and app.scene.GetNodeByID(node.GetID()) is node


def test_protected_volume_refuses_a_different_shape(study):
    _, volume, image = study
    with pytest.raises(ValueError):
        createProtectedVolume(volume, image[:-1])


def test_difference_volume_uses_a_symmetric_blue_white_red_map_scaled_to_the_budget(study):
    app, volume, _ = study
    difference = np.zeros((6, 10, 12), np.float32)
    difference[2, 3, 4], difference[3, 4, 5] = 23.5, -23.5
    node = createDifferenceVolume(volume, difference, budgetNative=23.5)
    assert node.GetName() == "CT chest difference"
    assert arrayFromVolumeNode(node).dtype == np.float32
    assert np.array_equal(arrayFromVolumeNode(node), difference)
    display = node.GetDisplayNode()
    assert not display.GetAutoWindowLevel()
    assert display.GetWindow() == pytest.approx(47.0) and display.GetLevel() == pytest.approx(0.0)
    colors = display.GetColorNode()
    assert colors.GetName() == DIFFERENCE_COLOR_NODE_NAME
    count = colors.GetNumberOfColors()
    rgba = [0.0] * 4
    colors.GetColor(0, rgba)
    assert rgba[:3] == pytest.approx([0.0, 0.0, 1.0])
    colors.GetColor(count - 1, rgba)
    assert rgba[:3] == pytest.approx([1.0, 0.0, 0.0])
    colors.GetColor(count // 2, rgba)
    assert min(rgba[:3]) > 0.98, "zero difference must look white"
    # Symmetric: entry n from the bottom mirrors entry n from the top with red and blue swapped.
    for index in (10, 60, 100):
        low, high = [0.0] * 4, [0.0] * 4
        colors.GetColor(index, low)
        colors.GetColor(count - 1 - index, high)
        assert low[:3] == pytest.approx([high[2], high[1], high[0]])
    # The colour node is shared by later difference volumes.
    other = createDifferenceVolume(volume, difference, budgetNative=10.0)
    assert other.GetDisplayNode().GetColorNodeID() == colors.GetID()
    assert differenceColorNode(app.scene) is colors


def test_difference_without_budget_falls_back_to_the_largest_change(study):
    _, volume, _ = study
    difference = np.zeros((6, 10, 12), np.float32)
    difference[0, 0, 0] = -7.0
    node = createDifferenceVolume(volume, difference, budgetNative=0.0)
    assert node.GetDisplayNode().GetWindow() == pytest.approx(14.0)


def test_metrics_table_lists_report_values(study):
    app, _, _ = study
    table = createMetricsTable(app.scene, REPORT, "metrics")
    rows = {table.GetCellText(r, 0): table.GetCellText(r, 1) for r in range(table.GetNumberOfRows())}
    assert rows["PSNR, whole volume (dB)"] == "51.23"
    assert rows["SSIM, whole volume"] == "0.9987"
    assert rows["Largest change (native units)"] == "23.5"
    assert rows["Changed voxels (%)"] == "1.234"
    assert rows["Region voxels"] == "812"
    assert rows["Warning"] == "budget is small against the contrast"
    assert [label for label, _ in metricRows({"ssim": None})] == ["SSIM, whole volume"]
    assert metricRows({"ssim": None})[0][1] == "n/a"


def test_metrics_table_states_the_designs_measured_evidence(study):
    from UMedProtectLib.designs import DESIGNS
    from UMedProtectLib.designs.evidence import threat_model

    app, _, _ = study
    evidence = threat_model("published", DESIGNS["published"].measurements)
    table = createMetricsTable(app.scene, {**REPORT, "threat_model": evidence}, "metrics")
    rows = {table.GetCellText(r, 0): table.GetCellText(r, 1) for r in range(table.GetNumberOfRows())}
    assert rows["Protection evidence"] == evidence["summary"] and "published" in evidence["summary"]


def test_node_removal_helpers_leave_no_orphans(study):
    app, volume, image = study
    before = nodeIds(app.scene)
    node = createProtectedVolume(volume, image)
    removeNodeWithDisplay(node)
    assert nodeIds(app.scene) == before
    with RemoveAddedNodes(app.scene):
        createDifferenceVolume(volume, image.astype(np.float32), 1.0)
        createMetricsTable(app.scene, REPORT, "t")
    assert nodeIds(app.scene) == before


def test_the_panels_robust_range_is_the_engines_on_a_subsample():
    from UMedProtectSlicer.budget import robustRange

    rng = np.random.default_rng(6)
    ct = rng.normal(40, 300, (20, 64, 64)).astype(np.int16)
    low, high = np.percentile(ct, (0.5, 99.5))
    assert robustRange(ct) == pytest.approx((low, high), rel=0.02)
    # Mostly constant images fall back to the full range, as the engine does.
    sparse = np.zeros((10, 10, 10))
    sparse[0, 0, 0] = 100
    assert robustRange(sparse) == (0.0, 100.0)
