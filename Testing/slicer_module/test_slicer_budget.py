"""The panel's budget in the volume's display window, on real MRML: request, engine run, table and Compare."""

import json

import numpy as np
import pytest

from slicer_testing import addSegmentationFromLabels, addVolume, loadSampleStudy, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.budget import describeBudget, displayWindow, resolveBudget, windowArgument
from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.labelmaps import regionMask
from UMedProtectSlicer.compare import leaveCompare, showCompare
from UMedProtectSlicer.export import exportResults
from UMedProtectSlicer.job import ProtectJob, ProtectRequest
from UMedProtectSlicer.metrics import metricRows
from UMedProtectSlicer.runner import EngineProcess
from UMedProtectSlicer.volumes import arrayFromVolumeNode


@pytest.fixture
def ct():
    """A CT-like volume in HU shown in a lung window (negative level), with a lesion segment."""
    app = makeMrmlApp()
    labels = np.zeros((4, 24, 24), np.uint8)
    labels[1:3, 8:16, 8:16] = 1
    image = np.where(labels > 0, 60, -1000).astype(np.int16)  # air around the lesion: read as a CT in HU
    volume = addVolume(app.scene, image, obliqueIjkToRas(), name="CT")
    volume.GetDisplayNode().SetAutoWindowLevel(False)
    volume.GetDisplayNode().SetWindowLevel(1500, -600)
    return app, volume, addSegmentationFromLabels(app, labels, obliqueIjkToRas(), name="Lesion")


def test_an_override_takes_the_display_window_and_the_default_leaves_the_window_to_the_engine(ct, tmp_path):
    app, volume, segmentation = ct
    assert displayWindow(volume) == (-600.0, 1500.0)
    command = ProtectJob(ProtectRequest(volume, segmentation, epsilonSteps=4), tmp_path / "a").prepare()
    assert command.settings.window == "-600,1500" and "--window=-600,1500" in command.arguments()
    chosen = ProtectJob(ProtectRequest(volume, segmentation, window="soft-tissue"), tmp_path / "b").prepare()
    assert "--window=soft-tissue" in chosen.arguments() and chosen.settings.epsilon is None
    default = ProtectJob(ProtectRequest(volume, segmentation), tmp_path / "c").prepare()
    assert default.settings.epsilon is None and default.settings.window is None
    volume.SetAndObserveDisplayNodeID(None)  # no display node: the override is a share of the engine's robust range
    bare = ProtectJob(ProtectRequest(volume, segmentation, epsilonSteps=4), tmp_path / "d").prepare()
    assert bare.settings.window is None and not any(a.startswith("--window") for a in bare.arguments())


def test_the_panel_states_the_engines_default_and_what_an_override_changes(ct):
    app, volume, segmentation = ct
    array, region = arrayFromVolumeNode(volume), regionMask(volume, segmentation)
    assert windowArgument((40.0, 400.0)) == "40,400" and windowArgument(None) == ""
    # The lesion lies at 60 HU: the brain window shows it; one of its grey levels (0.31 HU) is below the int16
    # image's step, so the engine raises it to 1.5 steps.
    default, ct_in_hu = resolveBudget(array, region)
    assert ct_in_hu and default.native == pytest.approx(1.5) and default.window.name == "brain"
    assert describeBudget(default, ct_in_hu, "HU") == (
        "1.5 HU: the default for a CT in HU: one grey level of the brain window (L40 W80), raised to 1.5 steps of "
        "this integer image (1.5 HU: changes of at most 1 HU; a smaller budget would change nothing); = 4.8 grey "
        "levels of brain, 0.96 of soft-tissue, 0.26 of lung, 0.21 of bone")
    override, _ = resolveBudget(array, region, 4, displayWindow(volume))
    assert override.native == pytest.approx(4 / 255 * 1500)
    assert describeBudget(override, ct_in_hu, "HU", default) == (
        "23.5 HU: 4/255 of the given window (L-600 W1500); replaces the default 1.5 HU (16 times it); = 75 grey "
        "levels of brain, 15 of soft-tissue, 4 of lung, 3.3 of bone")
    with pytest.raises(UserFacingError, match="more than this image's whole robust intensity range"):
        resolveBudget(array, region, 255, (0.0, 20000.0))


def test_metrics_table_rows_show_the_window_first():
    report = {"psnr_db": 50.0, "visibility": {
        "window": {"name": "soft-tissue", "level": 40.0, "width": 400.0, "low": -160.0, "high": 240.0},
        "budget_of_window": 0.025, "psnr_db": 41.234, "ssim": 0.99871, "max_change_of_window": 0.0175,
        "p99_change_of_window": 0.015, "roi_visible_fraction": 0.4321}}
    rows = dict(metricRows(report))
    assert metricRows(report)[0] == ("Reading window", "soft-tissue (level 40, width 400)")
    assert rows["Budget, share of the window (%)"] == "2.50"
    assert rows["PSNR in the window (dB)"] == "41.23" and rows["SSIM in the window"] == "0.9987"
    assert rows["Region voxels changed by more than one grey level (%)"] == "43.21"
    assert rows["PSNR, whole volume (dB)"] == "50.00"


def test_sample_study_in_the_users_window_through_the_engine_and_compare(sample_files, tmp_path):
    app = makeMrmlApp()
    volume, _, segmentation = loadSampleStudy(app, sample_files, "mni152 slab")
    display = volume.GetDisplayNode()
    display.SetAutoWindowLevel(False)
    display.SetWindowLevel(120.0, 100.0)  # the user reads the ventricles with a narrow window
    job = ProtectJob(ProtectRequest(volume, segmentation, epsilonSteps=8, device="cpu", iterations=0),
                     tmp_path / "w")
    process = EngineProcess(job.prepare())
    process.start()
    process.wait(timeout=300)
    assert process.failureMessage() is None, process.errorLines
    results = job.loadResults()
    seen = results.report["visibility"]
    assert (seen["window"]["level"], seen["window"]["width"]) == (100.0, 120.0)
    assert results.report["epsilon_native"] == pytest.approx(8 / 255 * 120)
    original = arrayFromVolumeNode(volume).astype(float)
    change = np.abs(np.clip((arrayFromVolumeNode(results.protectedNode) - 40.0) / 120, 0, 1)
                    - np.clip((original - 40.0) / 120, 0, 1))
    assert seen["max_change_of_window"] == pytest.approx(change.max())
    table = results.metricsTableNode
    assert table.GetCellText(0, 0) == "Reading window" and "width 120" in table.GetCellText(0, 1)
    # Compare shows Original and Protected in the report's window, then gives the user's settings back.
    display.SetWindowLevel(300.0, 150.0)
    state = showCompare(app.layoutNode, volume, results.protectedNode, results.differenceNode, segmentation)
    for node in (volume, results.protectedNode):
        assert (node.GetDisplayNode().GetWindow(), node.GetDisplayNode().GetLevel()) == (120.0, 100.0)
    leaveCompare(app.layoutNode, state)
    assert (display.GetWindow(), display.GetLevel()) == (300.0, 150.0) and not display.GetAutoWindowLevel()
    # The exported sidecar states the change as the user saw it.
    (tmp_path / "export").mkdir()
    exported = exportResults(tmp_path / "export", ".nrrd", volume, results.protectedNode, results.report)
    assert json.loads(exported.sidecar.read_text())["visibility"] == seen
    job.cleanup()
