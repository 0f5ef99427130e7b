"""The module's GUI-free logic on real MRML with the real engine process: protect, cancel, failures, compare, export."""

import importlib.util
import json
import os

import numpy as np
import pytest

from slicer_testing import addSegmentationFromLabels, addVolume, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.compare import COMPARE_LAYOUT_ID
from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.job import ProtectRequest
from UMedProtectSlicer.logic import PollingScheduler, ProtectionLogic
from UMedProtectSlicer.nodes import nodeIds
from UMedProtectSlicer.runner import EngineProcess
from UMedProtectSlicer.volumes import arrayFromVolumeNode, ijkToRasMatrix

needs_cli = pytest.mark.skipif(importlib.util.find_spec("UMedProtectLib.cli") is None,
                               reason="the CLI is not there yet")
SLICER_FOUR_UP = 3  # vtkMRMLLayoutNode::SlicerLayoutFourUpView


@pytest.fixture
def study():
    """A small oblique study with one lesion segmented, in a scene wired like Slicer's."""
    app = makeMrmlApp()
    app.layoutNode.SetViewArrangement(SLICER_FOUR_UP)
    geometry = obliqueIjkToRas()
    z, y, x = np.mgrid[0:5, 0:32, 0:32]
    labels = ((((y - 16) / 7.0) ** 2 + ((x - 15) / 8.0) ** 2 < 1) & (z > 0) & (z < 4)).astype(np.uint8)
    rng = np.random.default_rng(2)
    image = (150 + 40 * np.sin(x / 3.0) + rng.normal(0, 10, labels.shape) + 160 * labels).astype(np.int16)
    volume = addVolume(app.scene, image, geometry, name="Study")
    segmentation = addSegmentationFromLabels(app, labels, geometry, name="Lesion")
    return app, volume, segmentation, image, labels


class RecordingFactory:
    """The default process factory (the real EngineProcess), keeping each process so a test can look at it."""

    def __init__(self):
        self.processes = []

    def __call__(self, command):
        self.processes.append(EngineProcess(command))
        return self.processes[-1]


def assertGone(process: EngineProcess) -> None:
    """The engine and its whole process group (it runs in a session of its own) have exited."""
    assert process.process.poll() is not None
    with pytest.raises(ProcessLookupError):
        os.killpg(process.process.pid, 0)


@needs_cli
def test_background_protection_adds_results_on_the_input_grid_then_compares_and_exports(study, tmp_path):
    app, volume, segmentation, image, _ = study
    work = tmp_path / "work"
    work.mkdir()
    scheduler = PollingScheduler(intervalSeconds=0.05)
    logic = ProtectionLogic(app.scene, scheduler=scheduler, workRoot=work)
    events, finished = [], []
    request = ProtectRequest(volume, segmentation, epsilonSteps=8, device="cpu", iterations=2)
    assert logic.protect(request, progressCallback=events.append,
                         finishedCallback=lambda *outcome: finished.append(outcome)) is None
    assert logic.isRunning() and scheduler.running
    scheduler.runUntilStopped(timeout=240)
    assert len(finished) == 1
    results, message = finished[0]
    assert message is None and results is not None
    assert not logic.isRunning() and not list(work.iterdir()), "the run's temporary folder was left behind"
    assert events and events[-1].fraction == pytest.approx(1.0)

    assert {node.GetID() for node in (results.protectedNode, results.differenceNode, results.metricsTableNode)} \
        <= nodeIds(app.scene)
    protected = arrayFromVolumeNode(results.protectedNode)
    difference = arrayFromVolumeNode(results.differenceNode)
    for node in (results.protectedNode, results.differenceNode):
        assert np.allclose(ijkToRasMatrix(node), ijkToRasMatrix(volume))
        assert node.GetImageData().GetDimensions() == volume.GetImageData().GetDimensions()
    assert protected.dtype == image.dtype and np.array_equal(arrayFromVolumeNode(volume), image)
    assert np.abs(protected.astype(float) - image).max() <= results.report["epsilon_native"] + 1e-6
    assert np.allclose(difference, protected.astype(np.float32) - image)
    assert results.metricsTableNode.GetNumberOfRows() > 3
    assert logic.sourceVolumeOf(results.protectedNode) is volume

    logic.showCompare(volume, results.protectedNode, results.differenceNode, segmentation)
    assert app.layoutNode.GetViewArrangement() == COMPARE_LAYOUT_ID
    logic.leaveCompare()
    assert app.layoutNode.GetViewArrangement() == SLICER_FOUR_UP

    exported = logic.exportResults(tmp_path, ".nrrd", volume, results.protectedNode,
                                   labelSourceNode=segmentation)
    assert set(exported.files) == {"protected", "label"}
    sidecar = json.loads(exported.sidecar.read_text())
    assert sidecar["metrics"]["psnr_db"] == results.report["psnr_db"]


@needs_cli
def test_cancel_stops_the_engine_and_leaves_the_scene_as_it_was(study, tmp_path):
    app, volume, segmentation, image, _ = study
    scheduler = PollingScheduler(intervalSeconds=0.05)
    factory = RecordingFactory()
    logic = ProtectionLogic(app.scene, processFactory=factory, scheduler=scheduler, workRoot=tmp_path)
    before = nodeIds(app.scene)
    finished = []
    # Cancel on the first progress line: the engine is then surely running, far from done.
    logic.protect(ProtectRequest(volume, segmentation, device="cpu", iterations=100000),
                  progressCallback=lambda event: logic.cancel(),
                  finishedCallback=lambda *outcome: finished.append(outcome))
    scheduler.runUntilStopped(timeout=120)
    assert finished == [(None, "Protection was cancelled; nothing was added to the scene.")]
    assert nodeIds(app.scene) == before and np.array_equal(arrayFromVolumeNode(volume), image)
    assert not logic.isRunning() and not list(tmp_path.iterdir())
    assertGone(factory.processes[0])


@needs_cli
def test_engine_refusing_the_input_gives_one_sentence_and_adds_nothing(study, tmp_path):
    app, volume, _, _, labels = study
    labelmap = addVolume(app.scene, labels, ijkToRasMatrix(volume), name="lm", labelmap=True)
    factory = RecordingFactory()
    logic = ProtectionLogic(app.scene, processFactory=factory, workRoot=tmp_path)
    before = nodeIds(app.scene)
    # Label 7 is not in the label map: only the engine knows, so it is the engine that refuses.
    with pytest.raises(UserFacingError) as refused:
        logic.protect(ProtectRequest(volume, labelmap, labelValues="7", device="cpu", iterations=2),
                      waitForCompletion=True, timeout=120)
    message = str(refused.value)
    assert message and "\n" not in message and "Traceback" not in message and "7" in message
    assert nodeIds(app.scene) == before
    assert not logic.isRunning() and not list(tmp_path.iterdir())
    assertGone(factory.processes[0])


def test_refusals_before_the_engine_starts_leave_nothing_behind(study, tmp_path):
    app, volume, segmentation, _, _ = study
    factory = RecordingFactory()
    logic = ProtectionLogic(app.scene, processFactory=factory, workRoot=tmp_path)
    before = nodeIds(app.scene)
    with pytest.raises(UserFacingError, match="not in segmentation"):
        logic.protect(ProtectRequest(volume, segmentation, segmentIds=["no-such-segment"]), waitForCompletion=True)
    other = makeMrmlApp()
    stranger = addVolume(other.scene, arrayFromVolumeNode(volume), ijkToRasMatrix(volume), name="Elsewhere")
    with pytest.raises(UserFacingError, match="not in this scene"):
        logic.protect(ProtectRequest(stranger, segmentation), waitForCompletion=True)
    with pytest.raises(UserFacingError, match="protect a volume first"):
        logic.exportResults(tmp_path, ".nrrd", volume, None)
    with pytest.raises(UserFacingError, match="Protect a volume first"):
        logic.showCompare(volume, None, None)
    assert nodeIds(app.scene) == before and not factory.processes and not list(tmp_path.iterdir())
