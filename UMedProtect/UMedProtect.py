"""UMed Protect: protect a segmentation study with UMed unlearnable perturbations, compare, and export."""

import logging
import pathlib
import time
from typing import Annotated, Optional, Union

import qt
import slicer
import vtk
from slicer import vtkMRMLLabelMapVolumeNode, vtkMRMLScalarVolumeNode, vtkMRMLTableNode
from slicer.parameterNodeWrapper import Choice, Default, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# Non-core MRML classes must come from their own package: they are not in `slicer` yet when this file loads.
from vtkSlicerSegmentationsModuleMRMLPython import vtkMRMLSegmentationNode

from UMedProtectSlicer import budget, compare, dependencies, export, install, job, outputs, runner
from UMedProtectSlicer.engine import engineSettings
from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.labelmaps import allSegmentIds, regionMask
from UMedProtectSlicer.logic import POLL_INTERVAL_S, ProtectionLogic
from UMedProtectSlicer.volumes import arrayFromVolumeNode

EXPORT_FORMATS = list(export.FORMATS)  # "DICOM series" only for a volume loaded through the DICOM module


#
# UMedProtect
#


class UMedProtect(ScriptedLoadableModule):
    """Module description shown in Slicer's module list and help panel."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "UMed Protect"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["UMedProtect developers"]
        self.parent.helpText = """
<p>Protects a segmentation study before it is shared: adds a small, bounded perturbation (UMed, contour- and
texture-aware unlearnable perturbations) inside the segmented region and a thin band around its contour, meant
to stop a segmentation network from learning from the shared copy. The original volume is never changed;
the result is a new "&lt;name&gt; protected" volume.</p>
<p><b>Workflow:</b> choose the volume and its segmentation (or a label map), pick the segments, keep the
default budget (the one <tt>umed-protect protect</tt> gives the same study) or override it, press
<i>Protect</i>. Check the metrics and the <i>Compare</i> view (Original with the outline, Protected, Difference
in blue-white-red), then <i>Export</i> to NRRD or NIfTI with a JSON sidecar.</p>
<p><b>Limits:</b> voxels outside the region and band are bit-identical to the original; no voxel changes by
more than the budget (shown in the volume's units, e.g. HU). Whether a study is protected depends on the budget
relative to the contrast of the segmented structure: at small budgets (such as 4/255) against high-contrast
structures, measured protection was small or absent. PSNR and SSIM only say how visible the change is, not
whether it protects. The run fits generators on this study (or applies a saved profile) and may take minutes on
a CPU.</p>
<p><b>Citation:</b> if you use this module, cite the UMed method paper and this software as given in the
project's README ("Citation").</p>
"""
        self.parent.acknowledgementText = """
Built on 3D Slicer's scripted module template and on the Segmentations, Volumes and Colors modules. PyTorch is
installed through the PyTorch extension (PyTorchUtils) when it is present.
"""


#
# UMedProtectParameterNode
#


@parameterNodeWrapper
class UMedProtectParameterNode:
    """Everything the panel shows, saved with the scene. Fields named in the .ui via SlicerParameterName."""

    inputVolume: vtkMRMLScalarVolumeNode
    # The None is required by the wrapper for a Union of node types to default to "nothing selected".
    inputSegmentation: Union[vtkMRMLSegmentationNode, vtkMRMLLabelMapVolumeNode, None]
    segmentIds: list[str]
    labelValues: str
    # Defaults and bounds are the engine's (UMedProtectLib/settings.py); the .ui's spin boxes agree (test_ui.py).
    # Unticked, the engine resolves its default budget for the study, as `umed-protect protect` does.
    overrideBudget: bool
    epsilonSteps: Annotated[int, WithinRange(*engineSettings.BUDGET_STEPS),
                            Default(engineSettings.DEFAULT_BUDGET_STEPS)]
    bandWidth: Annotated[int, WithinRange(*engineSettings.panel_bounds("band_width")),
                         Default(engineSettings.OPTIONS["band_width"].default)]
    preset: Annotated[str, Choice(engineSettings.PANEL_PRESETS), Default(engineSettings.OPTIONS["preset"].default)]
    device: Annotated[str, Default(engineSettings.OPTIONS["device"].default)]
    seed: Annotated[int, WithinRange(*engineSettings.panel_bounds("seed")),
                    Default(engineSettings.OPTIONS["seed"].default)]
    useProfile: bool
    profilePath: pathlib.Path
    useMark: bool
    markKeyPath: pathlib.Path
    markOnly: bool
    protectedVolume: vtkMRMLScalarVolumeNode
    differenceVolume: vtkMRMLScalarVolumeNode
    metricsTable: vtkMRMLTableNode
    exportDirectory: pathlib.Path
    exportFormat: Annotated[str, Choice(EXPORT_FORMATS), Default(".nrrd")]
    exportDifference: bool
    exportSegmentation: Annotated[bool, Default(True)]


def chosenSegmentIds(parameterNode: UMedProtectParameterNode) -> list:
    """The segments to protect (empty = all); only meaningful for a segmentation input."""
    source = parameterNode.inputSegmentation
    return list(parameterNode.segmentIds) if source and source.IsA("vtkMRMLSegmentationNode") else []


#
# UMedProtectWidget
#


class UMedProtectWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The panel: binds the .ui to the parameter node and turns button presses into logic calls."""

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._shownLabelSource = None
        self._budgetText = (None, "")  # (what the budget label was computed from, its text)
        self._compareWindows = []  # (name, level, width) the Compare window combo box lists

    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/UMedProtect.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)

        self.logic = UMedProtectLogic()
        self.ui.progressBar.setVisible(False)
        self.ui.metricsTableView.setVisible(False)
        self._populateDevices()
        self.ui.presetComboBox.toolTip = ("Training budget of the generators: " + "; ".join(
            f"{name}: {engineSettings.PRESETS[name].describe()}" for name in engineSettings.PANEL_PRESETS)
            + ". Longer runs fit the study better and take longer.")

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        layoutNode = slicer.app.layoutManager().layoutLogic().GetLayoutNode()
        self.addObserver(layoutNode, vtk.vtkCommand.ModifiedEvent, self.onLayoutModified)

        self.ui.protectButton.connect("clicked(bool)", self.onProtectButton)
        self.ui.compareButton.connect("toggled(bool)", self.onCompareToggled)
        self.ui.compareWindowComboBox.connect("currentIndexChanged(int)", self.onCompareWindowChanged)
        self.ui.exportButton.connect("clicked(bool)", self.onExportButton)
        self.ui.segmentSelector.connect("segmentSelectionChanged(QStringList)", self.onSegmentSelectionChanged)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.onDeviceChanged)
        self.ui.metricsTableView.setEditTriggers(qt.QAbstractItemView.NoEditTriggers)

        self.initializeParameterNode()

    def cleanup(self) -> None:
        """Called when the application closes: stop a running engine and drop observers."""
        if self.logic is not None and self.logic.protection.isRunning():
            self.logic.protection.cancel()
        self.removeObservers()

    def enter(self) -> None:
        self.initializeParameterNode()

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)

    def onSceneStartClose(self, caller, event) -> None:
        if self.logic.protection.isRunning():
            self.logic.protection.cancel()
        self.logic.protection.forgetCompare()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        """Bind to the module's parameter node and preselect the first volume and segmentation."""
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            for volume in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode"):
                if not volume.IsA("vtkMRMLLabelMapVolumeNode") and not volume.GetAttribute(outputs.ROLE_ATTRIBUTE):
                    self._parameterNode.inputVolume = volume
                    break
        if not self._parameterNode.inputSegmentation:
            segmentation = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLSegmentationNode")
            if segmentation:
                self._parameterNode.inputSegmentation = segmentation
        if self._parameterNode.exportDirectory == pathlib.Path():
            # An unset path reads as "."; start in the folder where Slicer saves scenes instead.
            self._parameterNode.exportDirectory = pathlib.Path(slicer.app.defaultScenePath)

    def setParameterNode(self, inputParameterNode: Optional[UMedProtectParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            # The .ui gives each bound widget a "SlicerParameterName" dynamic property.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._onParameterNodeModified)
            self._selectDevice(self._parameterNode.device)
        self._shownLabelSource = None
        if self._parameterNode:
            self._onParameterNodeModified()

    # --- state of the panel -------------------------------------------------------------------------------

    def _updateButtons(self, caller=None, event=None) -> None:
        """Enable what can be done now; Protect reads Cancel while the engine runs."""
        p = self._parameterNode
        running = self.logic.protection.isRunning()
        self.ui.protectButton.text = "Cancel" if running else "Protect"
        canProtect = bool(p and p.inputVolume and p.inputSegmentation)
        self.ui.protectButton.enabled = running or canProtect
        self.ui.protectButton.toolTip = ("Stop the engine; nothing is added to the scene." if running else
                                         "Protect the volume." if canProtect else
                                         "Choose a volume and a segmentation first.")
        for section in (self.ui.inputsCollapsibleButton, self.ui.settingsCollapsibleButton):
            section.enabled = not running
        hasResult = bool(p and p.protectedVolume)
        self.ui.compareButton.enabled = hasResult and bool(p.differenceVolume) and not running
        self.ui.exportButton.enabled = hasResult and not running and bool(p.exportDirectory)
        self.ui.profilePathLineEdit.enabled = bool(p and p.useProfile)
        self.ui.markKeyPathLineEdit.enabled = self.ui.markOnlyCheckBox.enabled = bool(p and p.useMark)
        table = p.metricsTable if p else None
        self.ui.metricsTableView.setMRMLTableNode(table)
        self.ui.metricsTableView.setVisible(table is not None)

    def _onParameterNodeModified(self, caller=None, event=None) -> None:
        """Everything derived from the parameters: segment list, budget in native units, buttons."""
        self._syncLabelSource()
        self.updateBudgetLabel()
        self._updateButtons()

    def _syncLabelSource(self) -> None:
        """Show the segment list for a segmentation, the label values field for a label map."""
        source = self._parameterNode.inputSegmentation if self._parameterNode else None
        if source is self._shownLabelSource:
            return
        self._shownLabelSource = source
        isLabelmap = bool(source and source.IsA("vtkMRMLLabelMapVolumeNode"))
        isSegmentation = bool(source and source.IsA("vtkMRMLSegmentationNode"))
        for widget in (self.ui.segmentsLabel, self.ui.segmentSelector):
            widget.setVisible(not isLabelmap)
        for widget in (self.ui.labelValuesLabel, self.ui.labelValuesLineEdit):
            widget.setVisible(isLabelmap)
        self.ui.segmentSelector.setCurrentNode(source if isSegmentation else None)
        if isSegmentation:
            ordered = allSegmentIds(source)
            chosen = [s for s in self._parameterNode.segmentIds if s in ordered]
            # A new segmentation starts with every segment chosen.
            self.ui.segmentSelector.setSelectedSegmentIDs(chosen or ordered)

    def onSegmentSelectionChanged(self, segmentIds) -> None:
        if self._parameterNode:
            self._parameterNode.segmentIds = [str(s) for s in segmentIds]

    def _populateDevices(self) -> None:
        """Automatic and CPU always; each GPU once torch is installed (it is not imported before that)."""
        combo = self.ui.deviceComboBox
        wasBlocking = combo.blockSignals(True)
        combo.clear()
        for label, value in self.logic.availableDevices():
            combo.addItem(label, value)
        combo.blockSignals(wasBlocking)
        if self._parameterNode:
            self._selectDevice(self._parameterNode.device)

    def _selectDevice(self, value: str) -> None:
        index = self.ui.deviceComboBox.findData(value)
        self.ui.deviceComboBox.setCurrentIndex(index if index >= 0 else 0)

    def onDeviceChanged(self, index: int) -> None:
        if self._parameterNode and index >= 0:
            self._parameterNode.device = str(self.ui.deviceComboBox.itemData(index))

    def updateBudgetLabel(self) -> None:
        """Show the budget the engine resolves for this study: the default, or the override and what it changes."""
        p = self._parameterNode
        volume = p.inputVolume if p else None
        self.ui.epsilonSpinBox.enabled = bool(p and p.overrideBudget)
        if volume is None or volume.GetImageData() is None or p.inputSegmentation is None:
            self.ui.epsilonNativeLabel.text = "the default is resolved once the volume and its segmentation are chosen"
            return
        source = p.inputSegmentation
        studyKey = (volume.GetID(), volume.GetImageData().GetMTime(), source.GetID(), source.GetMTime(),
                    tuple(chosenSegmentIds(p)), p.labelValues)
        # Every parameter change lands here; the study is read again only when it, or what is asked of it, changed.
        key = (studyKey, bool(p.overrideBudget), p.epsilonSteps, budget.displayWindow(volume))
        if self._budgetText[0] != key:
            self._budgetText = (key, self._describeBudget(p))
        self.ui.epsilonNativeLabel.text = self._budgetText[1]

    def _describeBudget(self, p: UMedProtectParameterNode) -> str:
        """The budget label's text for the chosen study: the engine's default, or the override against it."""
        volume = p.inputVolume
        units = volume.GetVoxelValueUnits()
        unit = units.GetCodeValue() if units is not None and units.GetCodeValue() else ""
        try:
            array = arrayFromVolumeNode(volume)
            region = regionMask(volume, p.inputSegmentation, chosenSegmentIds(p), p.labelValues)
            default, ct = budget.resolveBudget(array, region)
            if not p.overrideBudget:
                return "default: " + budget.describeBudget(default, ct, unit)
            chosen, _ = budget.resolveBudget(array, region, p.epsilonSteps, budget.displayWindow(volume))
            return "override: " + budget.describeBudget(chosen, ct, unit, default)
        except (UserFacingError, ValueError) as error:
            return str(error)

    def _status(self, message: str, error: bool = False) -> None:
        """One sentence under the Protect button, also written to the log."""
        self.ui.statusLabel.text = message
        self.ui.statusLabel.setStyleSheet("color: #c0392b;" if error else "")
        self.ui.statusLog.appendPlainText(time.strftime("%H:%M:%S ") + message)
        (logging.error if error else logging.info)(message)

    # --- protect ------------------------------------------------------------------------------------------

    def onProtectButton(self) -> None:
        if self.logic.protection.isRunning():
            self.logic.protection.cancel()
            self._status("Cancelling...")
            return
        p = self._parameterNode
        try:
            self._status("Checking the Python packages the engine needs...")
            installed = self.logic.ensureDependencies(askConfirmation=True, log=self._status)
            if installed:
                self._populateDevices()
            self.ui.progressBar.value = 0
            self.ui.progressBar.setVisible(True)
            self.logic.protection.protect(self.logic.requestFrom(p), progressCallback=self.onProgress,
                                          finishedCallback=self.onFinished)
            self._status("Protecting: the engine runs in the background; Slicer stays usable.")
        except UserFacingError as error:
            self.ui.progressBar.setVisible(False)
            self._status(str(error), error=True)
        except Exception as error:  # an unexpected failure still gets one sentence; details go to the log
            logging.exception("UMedProtect failed to start")
            self.ui.progressBar.setVisible(False)
            self._status(f"Protection could not start: {error}", error=True)
        self._updateButtons()

    def onProgress(self, event: runner.ProgressEvent) -> None:
        self.ui.progressBar.value = int(round(event.fraction * 1000))
        text = f"{event.stage}: {event.message}" if event.message else event.stage
        self.ui.statusLabel.text = text
        self.ui.statusLog.appendPlainText(time.strftime("%H:%M:%S ") + text)

    def onFinished(self, results: Optional[job.ProtectResults], errorMessage: Optional[str]) -> None:
        """Called on the main thread by the logic's timer when the engine has stopped."""
        self.ui.progressBar.setVisible(False)
        if errorMessage:
            self._status(errorMessage, error=True)
        else:
            p = self._parameterNode
            p.protectedVolume = results.protectedNode
            p.differenceVolume = results.differenceNode
            p.metricsTable = results.metricsTableNode
            warnings = results.report.get("warnings") or []
            summary = f"Done: '{results.protectedNode.GetName()}' and '{results.differenceNode.GetName()}' were added."
            self._status(summary + (f" Warning: {warnings[0]}" if warnings else ""))
            self.ui.resultsCollapsibleButton.collapsed = False
            slicer.util.setSliceViewerLayers(background=results.protectedNode, fit=True)
        self._updateButtons()

    # --- compare --------------------------------------------------------------------------------------------

    def onCompareToggled(self, checked: bool) -> None:
        p = self._parameterNode
        try:
            if checked:
                self.logic.showCompare(p)
                self.ui.compareButton.text = "Leave compare"
            else:
                self.logic.protection.leaveCompare()
                self.ui.compareButton.text = "Compare"
        except (UserFacingError, RuntimeError) as error:
            self._status(str(error), error=True)
            self.ui.compareButton.setChecked(False)
        self._offerCompareWindows(self.ui.compareButton.checked)

    def _offerCompareWindows(self, inCompare: bool) -> None:
        """List the windows of the shown result's report in the combo box while the Compare view is shown."""
        combo = self.ui.compareWindowComboBox
        wasBlocking = combo.blockSignals(True)
        combo.clear()
        shown = self._parameterNode.protectedVolume if inCompare else None
        self._compareWindows = self.logic.protection.compareWindows(shown) if shown else []
        for name, level, width in self._compareWindows:
            combo.addItem(f"{name} (L{level:.4g} W{width:.4g})")
        combo.enabled = bool(self._compareWindows)
        combo.blockSignals(wasBlocking)

    def onCompareWindowChanged(self, index: int) -> None:
        """Show Original and Protected in the window chosen."""
        if 0 <= index < len(self._compareWindows):
            p = self._parameterNode
            self.logic.protection.setCompareWindow(self.logic.originalVolumeOf(p), p.protectedVolume,
                                                   self._compareWindows[index][1:])

    def onLayoutModified(self, caller, event) -> None:
        """The user picked another layout from the toolbar: leave compare mode the same way."""
        if self.ui.compareButton.checked and caller.GetViewArrangement() != compare.COMPARE_LAYOUT_ID:
            self.logic.protection.leaveCompare()
            wasBlocking = self.ui.compareButton.blockSignals(True)
            self.ui.compareButton.setChecked(False)
            self.ui.compareButton.text = "Compare"
            self.ui.compareButton.blockSignals(wasBlocking)
            self._offerCompareWindows(False)

    # --- export ---------------------------------------------------------------------------------------------

    def onExportButton(self) -> None:
        p = self._parameterNode
        folder = pathlib.Path(p.exportDirectory)
        planned = export.plannedPaths(folder, self.logic.originalVolumeOf(p).GetName(), p.exportFormat,
                                      p.exportDifference, p.exportSegmentation and p.inputSegmentation is not None)
        existing = [path.name for path in planned.values() if path.exists()]
        overwrite = False
        if existing:
            overwrite = slicer.util.confirmYesNoDisplay(
                f"{', '.join(existing)} already exist in {folder}. Replace them?", windowTitle="UMed Protect")
            if not overwrite:
                self._status("Export cancelled; nothing was written.")
                return
        try:
            with slicer.util.WaitCursor():
                exported = self.logic.exportFromParameters(p, overwrite=overwrite)
            self._status(f"Exported {len(exported.files)} file(s) and {exported.sidecar.name} to {folder}.")
        except UserFacingError as error:
            self._status(str(error), error=True)


#
# UMedProtectLogic
#


class QTimerScheduler:
    """The protection's scheduler on Slicer's event loop: a QTimer ticks on the main thread, where MRML lives."""

    def __init__(self) -> None:
        self._tick = None
        self._timer = qt.QTimer()
        self._timer.setInterval(int(POLL_INTERVAL_S * 1000))
        self._timer.connect("timeout()", self._onTimeout)

    def start(self, tick) -> None:
        self._tick = tick
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._tick = None

    def _onTimeout(self) -> None:
        if self._tick is not None:
            self._tick()


class UMedProtectLogic(ScriptedLoadableModuleLogic):
    """Adapts the application (parameter node, Qt timer, layout manager, pip) to the GUI-free ProtectionLogic."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self.protection = ProtectionLogic(slicer.mrmlScene, scheduler=QTimerScheduler(),
                                          workRoot=pathlib.Path(slicer.app.temporaryPath))

    def getParameterNode(self) -> UMedProtectParameterNode:
        return UMedProtectParameterNode(super().getParameterNode())

    @staticmethod
    def ensureDependencies(askConfirmation: bool = True, log=None) -> bool:
        """Install what the engine lacks (asking first); True when something was installed."""
        return install.ensureDependencies(askConfirmation=askConfirmation, log=log)

    @staticmethod
    def availableDevices() -> list:
        """(label, value) pairs: automatic, CPU, each CUDA GPU and Apple MPS when torch is installed."""
        devices = [("Automatic (GPU if available)", "auto"), ("CPU", "cpu")]
        if dependencies.missingPackages({"torch": dependencies.REQUIREMENTS["torch"]}):
            return devices
        try:
            import torch

            for index in range(torch.cuda.device_count()):
                devices.append((f"GPU {index}: {torch.cuda.get_device_name(index)}", f"cuda:{index}"))
            if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
                devices.append(("Apple GPU (MPS)", "mps"))
        except Exception as error:  # a broken torch install must not break the panel
            logging.warning(f"Could not list GPUs: {error}")
        return devices

    @staticmethod
    def requestFrom(parameterNode: UMedProtectParameterNode) -> job.ProtectRequest:
        """What the panel asks to protect."""
        p = parameterNode
        return job.ProtectRequest(
            volumeNode=p.inputVolume, labelSourceNode=p.inputSegmentation,
            segmentIds=chosenSegmentIds(p), labelValues=p.labelValues,
            epsilonSteps=p.epsilonSteps if p.overrideBudget else None,
            bandWidth=p.bandWidth, preset=p.preset, device=p.device, seed=p.seed,
            profilePath=p.profilePath if p.useProfile else None,
            markKeyPath=p.markKeyPath if p.useMark else None, markOnly=bool(p.useMark and p.markOnly))

    def originalVolumeOf(self, parameterNode: UMedProtectParameterNode):
        """The volume the shown result was made from (it may differ from the input now selected), else the input."""
        return self.protection.sourceVolumeOf(parameterNode.protectedVolume) or parameterNode.inputVolume

    def showCompare(self, parameterNode: UMedProtectParameterNode) -> None:
        """The Compare view of the shown result, its views fitted to the volumes."""
        p = parameterNode
        self.protection.showCompare(self.originalVolumeOf(p), p.protectedVolume, p.differenceVolume,
                                    p.inputSegmentation)
        slicer.util.resetSliceViews()

    def exportFromParameters(self, parameterNode: UMedProtectParameterNode,
                             overwrite: bool = False) -> export.ExportedFiles:
        """Export the shown result with the panel's choices, recording Slicer's version in the sidecar."""
        p = parameterNode
        return self.protection.exportResults(
            folder=pathlib.Path(p.exportDirectory), fileFormat=p.exportFormat, inputVolumeNode=self.originalVolumeOf(p),
            protectedNode=p.protectedVolume, differenceNode=p.differenceVolume if p.exportDifference else None,
            labelSourceNode=p.inputSegmentation if p.exportSegmentation else None, segmentIds=chosenSegmentIds(p),
            extraVersions={"Slicer": slicer.app.applicationVersion, "Slicer revision": slicer.app.revision},
            overwrite=overwrite)


#
# UMedProtectTest
#


class UMedProtectTest(ScriptedLoadableModuleTest):
    """Self-test ("Reload and Test"): protects a small synthetic study in blocking mode and checks everything."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ProtectCompareExport()

    def _syntheticStudy(self):
        """A 24x48x48 int16 volume (oblique, anisotropic) with a bright sphere segmented as one segment."""
        import numpy as np

        from UMedProtectSlicer.volumes import updateVolumeNodeFromArray

        rng = np.random.default_rng(0)
        k, j, i = np.mgrid[0:24, 0:48, 0:48]
        sphere = ((k - 12) * 2.5) ** 2 + (j - 24) ** 2 + (i - 22) ** 2 < 12 ** 2
        image = (rng.normal(40, 10, sphere.shape) + 60 * sphere).astype(np.int16)
        angle = 0.2
        ijkToRas = np.eye(4)
        rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
        ijkToRas[:3, :3] = rotation @ np.diag([0.8, 0.8, 2.0])
        ijkToRas[:3, 3] = (-20.0, -20.0, -24.0)
        volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", "UMedTestVolume")
        updateVolumeNodeFromArray(volume, image, ijkToRas)
        volume.CreateDefaultDisplayNodes()
        labelmap = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLLabelMapVolumeNode", "UMedTestLabel")
        updateVolumeNodeFromArray(labelmap, sphere.astype(np.uint8), ijkToRas)
        segmentation = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", "UMedTestSegmentation")
        segmentation.CreateDefaultDisplayNodes()
        slicer.modules.segmentations.logic().ImportLabelmapToSegmentationNode(labelmap, segmentation)
        slicer.mrmlScene.RemoveNode(labelmap)
        return volume, segmentation, image, sphere

    def test_ProtectCompareExport(self):
        import json
        import tempfile

        import numpy as np

        self.delayDisplay("Building a synthetic study")
        logic = UMedProtectLogic()
        logic.ensureDependencies(askConfirmation=False)
        volume, segmentation, image, sphere = self._syntheticStudy()
        nodesBefore = slicer.mrmlScene.GetNumberOfNodes()

        self.delayDisplay("A missing segment is refused in one sentence and leaves the scene as it was")
        with self.assertRaises(UserFacingError):
            logic.protection.protect(job.ProtectRequest(volume, segmentation, segmentIds=["no-such-segment"]),
                                     waitForCompletion=True)
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodesBefore)

        self.delayDisplay("Protecting with a tiny training budget in blocking mode")
        events = []
        request = job.ProtectRequest(volume, segmentation, epsilonSteps=4, device="cpu", iterations=2)
        results = logic.protection.protect(request, waitForCompletion=True, progressCallback=events.append,
                                           timeout=900)
        self.assertTrue(events, "the engine reported no progress")
        protectedArray = slicer.util.arrayFromVolume(results.protectedNode)
        differenceArray = slicer.util.arrayFromVolume(results.differenceNode)
        self.assertEqual(protectedArray.shape, image.shape)
        self.assertEqual(protectedArray.dtype, image.dtype)
        self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(volume), image), "the input volume was modified")
        budgetNative = float(results.report["epsilon_native"])
        self.assertLessEqual(float(np.abs(protectedArray.astype(float) - image).max()), budgetNative + 1e-6)
        self.assertTrue(np.allclose(differenceArray, protectedArray.astype(np.float32) - image, atol=1e-3))
        self.assertEqual(results.protectedNode.GetName(), "UMedTestVolume protected")
        self.assertEqual(results.differenceNode.GetName(), "UMedTestVolume difference")
        self.assertGreater(results.metricsTableNode.GetNumberOfRows(), 3)

        self.delayDisplay("Compare view: three linked views, previous layout restored on leaving")
        layoutNode = slicer.app.layoutManager().layoutLogic().GetLayoutNode()
        previous = layoutNode.GetViewArrangement()
        logic.protection.showCompare(volume, results.protectedNode, results.differenceNode, segmentation)
        self.assertEqual(layoutNode.GetViewArrangement(), compare.COMPARE_LAYOUT_ID)
        for layoutName, _, _ in compare.COMPARE_VIEWS:
            self.assertIsNotNone(slicer.app.layoutManager().sliceWidget(layoutName))
            self.assertTrue(compare.sliceCompositeNodeFor(slicer.mrmlScene, layoutName).GetLinkedControl())
        logic.protection.leaveCompare()
        self.assertEqual(layoutNode.GetViewArrangement(), previous)

        self.delayDisplay("Export to NRRD and NIfTI with sidecars")
        parameterNode = logic.getParameterNode()
        parameterNode.inputVolume, parameterNode.inputSegmentation = volume, segmentation
        parameterNode.protectedVolume, parameterNode.differenceVolume = results.protectedNode, results.differenceNode
        parameterNode.exportDifference = True
        with tempfile.TemporaryDirectory() as folder:
            for fileFormat in export.FILE_FORMATS:
                parameterNode.exportDirectory = pathlib.Path(folder) / fileFormat.strip(".")
                parameterNode.exportDirectory.mkdir()
                parameterNode.exportFormat = fileFormat
                exported = logic.exportFromParameters(parameterNode)
                self.assertEqual(set(exported.files), {"protected", "difference", "label"})
                sidecar = json.loads(exported.sidecar.read_text())
                self.assertIn("psnr_db", sidecar["metrics"])
                reloaded = slicer.util.loadVolume(str(exported.files["protected"]))
                self.assertTrue(np.array_equal(slicer.util.arrayFromVolume(reloaded), protectedArray))
                slicer.mrmlScene.RemoveNode(reloaded)
        self.delayDisplay("Test passed")
