"""The Compare layout: three linked slice views created by Slicer's layout logic, and restoring on leave."""

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from slicer_testing import addSegmentationFromLabels, addVolume, loadSampleStudy, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.compare import (COMPARE_LAYOUT_ID, COMPARE_VIEW_GROUP, COMPARE_VIEWS, compareLayoutXml,
                                       leaveCompare, registerCompareLayout, showCompare, sliceCompositeNodeFor,
                                       sliceNodeFor)
from UMedProtectSlicer.outputs import createDifferenceVolume, createProtectedVolume

SLICER_FOUR_UP = 3  # vtkMRMLLayoutNode::SlicerLayoutFourUpView


def test_layout_xml_has_three_slice_views_in_one_group():
    root = ET.fromstring(compareLayoutXml("Coronal"))
    assert root.tag == "layout" and root.get("type") == "horizontal"
    views = root.findall("./item/view")
    assert [v.get("singletontag") for v in views] == [name for name, _, _ in COMPARE_VIEWS]
    for view in views:
        assert view.get("class") == "vtkMRMLSliceNode"
        props = {p.get("name"): p.text for p in view.findall("property")}
        assert props["orientation"] == "Coronal"
        assert props["viewgroup"] == str(COMPARE_VIEW_GROUP)


@pytest.fixture
def study():
    app = makeMrmlApp()
    app.layoutNode.SetViewArrangement(SLICER_FOUR_UP)
    app.createSliceLogics()
    geometry = obliqueIjkToRas()
    labels = np.zeros((8, 16, 16), np.uint8)
    labels[2:6, 4:12, 4:12] = 1
    image = (np.random.default_rng(0).normal(100, 10, labels.shape) + 50 * labels).astype(np.int16)
    volume = addVolume(app.scene, image, geometry, name="MR")
    segmentation = addSegmentationFromLabels(app, labels, geometry)
    protected = createProtectedVolume(volume, image + 1)
    difference = createDifferenceVolume(volume, np.ones(image.shape, np.float32), 2.0)
    return app, volume, segmentation, protected, difference


def test_show_compare_creates_three_linked_views_with_the_volumes(study):
    app, volume, segmentation, protected, difference = study
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation)
    assert app.layoutNode.GetViewArrangement() == COMPARE_LAYOUT_ID
    assert state.previousLayout == SLICER_FOUR_UP
    app.createSliceLogics()  # what Slicer's layout manager does for the new views
    expected = [volume, protected, difference]
    for (name, label, _), volumeNode in zip(COMPARE_VIEWS, expected):
        sliceNode = sliceNodeFor(app.scene, name)
        assert sliceNode is not None, f"layout logic did not create {name}"
        assert sliceNode.GetViewGroup() == COMPARE_VIEW_GROUP
        assert sliceNode.GetLayoutLabel() == label[0]
        composite = sliceCompositeNodeFor(app.scene, name)
        assert composite is app.sliceLogic(name).GetSliceCompositeNode(), "a second composite node was created"
        assert composite.GetBackgroundVolumeID() == volumeNode.GetID()
        assert composite.GetLinkedControl()


def test_views_are_really_linked_and_only_to_each_other(study):
    app, volume, segmentation, protected, difference = study
    showCompare(app.layoutNode, volume, protected, difference, segmentation)
    app.createSliceLogics()
    original = app.sliceLogic("UMedOriginal")
    red = app.sliceLogic("Red")
    redOffset = red.GetSliceOffset()
    original.StartSliceOffsetInteraction()
    original.SetSliceOffset(original.GetSliceOffset() + 6.0)
    original.EndSliceOffsetInteraction()
    target = original.GetSliceOffset()
    for name in ("UMedProtected", "UMedDifference"):
        assert app.sliceLogic(name).GetSliceOffset() == pytest.approx(target)
    assert red.GetSliceOffset() == pytest.approx(redOffset), "the Compare views must not drive the Red view"


def test_segmentation_outline_only_in_original_view_and_restored_on_leave(study):
    app, volume, segmentation, protected, difference = study
    display = segmentation.GetDisplayNode()
    display.SetVisibility2DFill(True)
    display.SetVisibility2DOutline(False)
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation)
    original = sliceNodeFor(app.scene, "UMedOriginal")
    assert [display.GetNthViewNodeID(i) for i in range(display.GetNumberOfViewNodeIDs())] == [original.GetID()]
    assert display.IsDisplayableInView(original.GetID())
    assert not display.IsDisplayableInView(sliceNodeFor(app.scene, "UMedProtected").GetID())
    assert not display.GetVisibility2DFill() and display.GetVisibility2DOutline()
    leaveCompare(app.layoutNode, state)
    assert app.layoutNode.GetViewArrangement() == SLICER_FOUR_UP
    assert display.GetNumberOfViewNodeIDs() == 0
    assert display.GetVisibility2DFill() and not display.GetVisibility2DOutline()


def test_leaving_after_the_user_switched_layout_keeps_the_users_choice(study):
    app, volume, segmentation, protected, difference = study
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation)
    app.layoutNode.SetViewArrangement(6)  # the user picks "Red slice only" from the toolbar
    leaveCompare(app.layoutNode, state)
    assert app.layoutNode.GetViewArrangement() == 6


def test_showing_again_keeps_the_first_previous_layout(study):
    app, volume, segmentation, protected, difference = study
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation)
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation, state=state)
    leaveCompare(app.layoutNode, state)
    assert app.layoutNode.GetViewArrangement() == SLICER_FOUR_UP


def test_label_map_source_is_shown_as_outline_label_layer(study):
    app, volume, _, protected, difference = study
    labelmap = addVolume(app.scene, np.ones((8, 16, 16), np.uint8), obliqueIjkToRas(), name="lm", labelmap=True)
    showCompare(app.layoutNode, volume, protected, difference, labelmap)
    assert sliceCompositeNodeFor(app.scene, "UMedOriginal").GetLabelVolumeID() == labelmap.GetID()
    assert sliceNodeFor(app.scene, "UMedOriginal").GetUseLabelOutline()


def test_register_is_idempotent():
    app = makeMrmlApp()
    registerCompareLayout(app.layoutNode, "Axial")
    registerCompareLayout(app.layoutNode, "Sagittal")
    assert "Sagittal" in app.layoutNode.GetLayoutDescription(COMPARE_LAYOUT_ID)


def test_compare_on_the_sample_study(sample_files):
    app = makeMrmlApp()
    volume, _, segmentation = loadSampleStudy(app, sample_files)
    from UMedProtectSlicer.volumes import arrayFromVolumeNode

    image = arrayFromVolumeNode(volume)
    protected = createProtectedVolume(volume, image)
    difference = createDifferenceVolume(volume, np.zeros(image.shape, np.float32), 4 / 255 * 255)
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation)
    app.createSliceLogics()
    for name, _, _ in COMPARE_VIEWS:
        assert sliceCompositeNodeFor(app.scene, name).GetBackgroundVolumeID()
    leaveCompare(app.layoutNode, state)


def test_compare_offers_the_reports_windows_and_shows_each(study):
    """A CT's report (the engine's own, on a CT-like study) lists its reading window, then the standard windows
    that show the ROI; choosing one sets Original and Protected to it, and leaving restores their own window."""
    import json

    from test_visibility import synthetic_ct

    from UMedProtectLib import ProtectSettings, protect
    from UMedProtectSlicer.compare import reportWindows, showInWindow
    from UMedProtectSlicer.outputs import REPORT_ATTRIBUTE

    app, volume, segmentation, protected, difference = study
    image, label = synthetic_ct()
    report = protect(image, label, settings=ProtectSettings(iterations=0, device="cpu")).report
    protected.SetAttribute(REPORT_ATTRIBUTE, json.dumps(report))
    windows = reportWindows(protected)
    assert [name for name, _, _ in windows] == ["brain", "soft-tissue", "lung", "bone"]
    assert windows[0][1:] == (40.0, 80.0) and windows[3][1:] == (400.0, 1800.0)
    for node in (volume, protected):
        node.GetDisplayNode().SetAutoWindowLevel(False)
        node.GetDisplayNode().SetWindowLevel(123.0, 45.0)
    state = showCompare(app.layoutNode, volume, protected, difference, segmentation)
    assert protected.GetDisplayNode().GetWindow() == 80.0 and protected.GetDisplayNode().GetLevel() == 40.0
    showInWindow((volume, protected), windows[1][1:], state)
    for node in (volume, protected):
        assert (node.GetDisplayNode().GetWindow(), node.GetDisplayNode().GetLevel()) == (400.0, 40.0)
    leaveCompare(app.layoutNode, state)
    for node in (volume, protected):
        assert (node.GetDisplayNode().GetWindow(), node.GetDisplayNode().GetLevel()) == (123.0, 45.0)
    protected.SetAttribute(REPORT_ATTRIBUTE, json.dumps({"visibility": {"window": {"name": "robust range",
                                                                                  "level": 117.0, "width": 234.0}}}))
    assert reportWindows(protected) == [("robust range", 117.0, 234.0)]  # an MR: its reading window only
