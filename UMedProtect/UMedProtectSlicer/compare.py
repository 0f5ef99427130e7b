"""The Compare view: three linked slice views (Original + outline, Protected, Difference) as a custom layout.

Original and Protected are shown in the reading window of the run's report (the display window the user read
with, unless another was chosen), the Difference with the budget at full colour. The windows the report states the
change in (for a CT: the standard windows that show the ROI's tissue, as the preview shows them) are offered too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from .outputs import REPORT_ATTRIBUTE

# An ID far from Slicer's built-in layouts (0-100s) and from the small numbers other extensions tend to use.
COMPARE_LAYOUT_ID = 25601
# The three views link with each other only: Slicer links slice views that share a view group.
COMPARE_VIEW_GROUP = 9
COMPARE_VIEWS = (
    # (singleton tag / layout name, label shown in the view corner, view colour)
    ("UMedOriginal", "Original", "#7f7f7f"),
    ("UMedProtected", "Protected", "#3c9e4a"),
    ("UMedDifference", "Difference", "#c0392b"),
)


def compareLayoutXml(orientation: str = "Axial") -> str:
    """The layout description: three slice views side by side in one view group."""
    items = []
    for layoutName, label, color in COMPARE_VIEWS:
        items.append(
            f' <item>\n'
            f'  <view class="vtkMRMLSliceNode" singletontag="{layoutName}">\n'
            f'   <property name="orientation" action="default">{orientation}</property>\n'
            f'   <property name="viewlabel" action="default">{label[0]}</property>\n'
            f'   <property name="viewcolor" action="default">{color}</property>\n'
            f'   <property name="viewgroup" action="default">{COMPARE_VIEW_GROUP}</property>\n'
            f'  </view>\n'
            f' </item>\n')
    return '<layout type="horizontal" split="true">\n' + "".join(items) + "</layout>\n"


def registerCompareLayout(layoutNode, orientation: str = "Axial") -> None:
    """Add (or refresh) the Compare layout in the layout node's list of layouts."""
    xml = compareLayoutXml(orientation)
    if layoutNode.IsLayoutDescription(COMPARE_LAYOUT_ID):
        layoutNode.SetLayoutDescription(COMPARE_LAYOUT_ID, xml)
    else:
        layoutNode.AddLayoutDescription(COMPARE_LAYOUT_ID, xml)


def sliceNodeFor(scene, layoutName: str):
    """The slice node of a view of the layout (created by Slicer's layout logic when the layout is shown)."""
    return scene.GetSingletonNode(layoutName, "vtkMRMLSliceNode")


def sliceCompositeNodeFor(scene, layoutName: str):
    """The view's composite node (which volumes it shows); created if the view has no slice logic yet.

    Slicer's slice logic adopts an existing composite node with the same layout name, so creating it early is safe.
    """
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceCompositeNode")):
        node = scene.GetNthNodeByClass(index, "vtkMRMLSliceCompositeNode")
        if node.GetLayoutName() == layoutName:
            return node
    node = scene.CreateNodeByClass("vtkMRMLSliceCompositeNode")
    node.SetLayoutName(layoutName)
    node.SetSingletonTag(layoutName)
    node = scene.AddNode(node)
    return node


@dataclass
class CompareState:
    """What entering the Compare view changed, so that leaving it puts everything back."""

    previousLayout: int
    segmentationDisplayNodeId: str = ""
    segmentationViewNodeIds: list = field(default_factory=list)
    segmentationFill2D: bool = True
    segmentationOutline2D: bool = True
    # (display node ID, auto window/level, window, level) of the volumes whose window Compare changed.
    displayWindows: list = field(default_factory=list)


def reportWindows(protectedNode) -> List[Tuple[str, float, float]]:
    """(name, level, width) of the windows in the report stored on a protected volume: its reading window first, then
    the standard windows that show the ROI's tissue (a CT); empty without a report."""
    text = protectedNode.GetAttribute(REPORT_ATTRIBUTE) if protectedNode is not None else None
    try:
        report = json.loads(text)
        covering = (report.get("reading") or {}).get("covering_windows") or []
        windows = [report["visibility"]["window"]]
        windows += [seen["window"] for seen in report.get("standard_windows") or []
                    if seen["window"]["name"] in covering and seen["window"]["name"] != windows[0]["name"]]
        return [(str(window["name"]), float(window["level"]), float(window["width"])) for window in windows]
    except (TypeError, ValueError, KeyError, AttributeError):
        return []


def reportWindow(protectedNode) -> Optional[Tuple[float, float]]:
    """(level, width) of the reading window in the report stored on a protected volume; None without one."""
    windows = reportWindows(protectedNode)
    return windows[0][1:] if windows else None


def showInWindow(volumeNodes, window: Tuple[float, float], state: CompareState) -> None:
    """Set the volumes' display to the window; remember their settings the first time."""
    remembered = {entry[0] for entry in state.displayWindows}
    for volumeNode in volumeNodes:
        display = volumeNode.GetDisplayNode() if volumeNode is not None else None
        if display is None:
            continue
        if display.GetID() not in remembered:
            state.displayWindows.append((display.GetID(), bool(display.GetAutoWindowLevel()), display.GetWindow(),
                                         display.GetLevel()))
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(window[1], window[0])


def showCompare(layoutNode, originalNode, protectedNode, differenceNode, labelSourceNode=None,
                orientation: str = "Axial", state: Optional[CompareState] = None,
                window: Optional[Tuple[float, float]] = None) -> CompareState:
    """Switch to the Compare layout and fill its views; returns the state to give to leaveCompare.

    labelSourceNode (segmentation or label map) is drawn as an outline in the Original view only. Original and
    Protected are shown in `window` (level, width), by default the reading window of protectedNode's report.
    """
    scene = layoutNode.GetScene()
    if state is None:
        state = CompareState(previousLayout=layoutNode.GetViewArrangement())
    registerCompareLayout(layoutNode, orientation)
    layoutNode.SetViewArrangement(COMPARE_LAYOUT_ID)
    volumes = (originalNode, protectedNode, differenceNode)
    for (layoutName, _, _), volumeNode in zip(COMPARE_VIEWS, volumes):
        sliceNode = sliceNodeFor(scene, layoutName)
        if sliceNode is None:
            raise RuntimeError(f"the Compare layout did not create slice view {layoutName}")
        composite = sliceCompositeNodeFor(scene, layoutName)
        composite.SetBackgroundVolumeID(volumeNode.GetID() if volumeNode else None)
        composite.SetForegroundVolumeID(None)
        composite.SetLabelVolumeID(None)
        # Linked control: panning, zooming and scrolling one view moves the other two (same view group).
        composite.SetLinkedControl(True)
        composite.SetHotLinkedControl(False)
    window = window if window is not None else reportWindow(protectedNode)
    if window is not None:
        showInWindow((originalNode, protectedNode), window, state)
    originalSliceNode = sliceNodeFor(scene, COMPARE_VIEWS[0][0])
    if labelSourceNode is not None and labelSourceNode.IsA("vtkMRMLSegmentationNode"):
        _outlineSegmentationInView(labelSourceNode, originalSliceNode, state)
    elif labelSourceNode is not None and labelSourceNode.IsA("vtkMRMLLabelMapVolumeNode"):
        sliceCompositeNodeFor(scene, COMPARE_VIEWS[0][0]).SetLabelVolumeID(labelSourceNode.GetID())
        originalSliceNode.SetUseLabelOutline(True)
    return state


def _outlineSegmentationInView(segmentationNode, sliceNode, state: CompareState) -> None:
    """Show the segmentation as an outline in one view; remember its display settings first."""
    if segmentationNode.GetDisplayNode() is None:
        segmentationNode.CreateDefaultDisplayNodes()
    displayNode = segmentationNode.GetDisplayNode()
    if not state.segmentationDisplayNodeId:
        state.segmentationDisplayNodeId = displayNode.GetID()
        state.segmentationViewNodeIds = [displayNode.GetNthViewNodeID(i)
                                         for i in range(displayNode.GetNumberOfViewNodeIDs())]
        state.segmentationFill2D = bool(displayNode.GetVisibility2DFill())
        state.segmentationOutline2D = bool(displayNode.GetVisibility2DOutline())
    wasModifying = displayNode.StartModify()
    displayNode.SetVisibility2DFill(False)
    displayNode.SetVisibility2DOutline(True)
    # A non-empty view list restricts the display to those views: only Original shows the outline.
    displayNode.RemoveAllViewNodeIDs()
    displayNode.AddViewNodeID(sliceNode.GetID())
    displayNode.EndModify(wasModifying)


def leaveCompare(layoutNode, state: CompareState) -> None:
    """Restore the layout, the segmentation display and the volumes' windows that were in use before showCompare."""
    scene = layoutNode.GetScene()
    if state.segmentationDisplayNodeId:
        displayNode = scene.GetNodeByID(state.segmentationDisplayNodeId)
        if displayNode is not None:
            wasModifying = displayNode.StartModify()
            displayNode.RemoveAllViewNodeIDs()
            for viewNodeId in state.segmentationViewNodeIds:
                displayNode.AddViewNodeID(viewNodeId)
            displayNode.SetVisibility2DFill(state.segmentationFill2D)
            displayNode.SetVisibility2DOutline(state.segmentationOutline2D)
            displayNode.EndModify(wasModifying)
    for displayId, auto, windowWidth, level in state.displayWindows:
        display = scene.GetNodeByID(displayId)
        if display is not None:
            display.SetWindowLevel(windowWidth, level)
            display.SetAutoWindowLevel(auto)
    if layoutNode.GetViewArrangement() == COMPARE_LAYOUT_ID:
        layoutNode.SetViewArrangement(state.previousLayout)
