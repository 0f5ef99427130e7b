"""The panel's budget in the volume's display window, on real MRML: request, engine run, table and Compare."""

import json

import numpy as np
import pytest

from slicer_testing import addSegmentationFromLabels, addVolume, loadSampleStudy, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.budget import describeBudget, displayWindow, windowArgument
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
    image = np.where(labels > 0, 60, -800).astype(np.int16)
    volume = addVolume(app.scene, image, obliqueIjkToRas(), name="CT")
    volume.GetDisplayNode().SetAutoWindowLevel(False)
    volume.GetDisplayNode().SetWindowLevel(1500, -600)
    return app, volume, addSegmentationFromLabels(app, labels, obliqueIjkToRas(), name="Lesion")


def test_the_request_takes_the_display_window_and_passes_it_as_one_token(ct, tmp_path):
    app, volume, segmentation = ct
    assert displayWindow(volume) == (-600.0, 1500.0)
    command = ProtectJob(ProtectRequest(volume, segmentation), tmp_path / "a").prepare()
    assert command.settings.window == "-600,1500" and "--window=-600,1500" in command.arguments()
    chosen = ProtectJob(ProtectRequest(volume, segmentation, window="soft-tissue"), tmp_path / "b").prepare()
    assert "--window=soft-tissue" in chosen.arguments()
    volume.SetAndObserveDisplayNodeID(None)  # no display node: the engine's robust range
    bare = ProtectJob(ProtectRequest(volume, segmentation), tmp_path / "c").prepare()
    assert bare.settings.window is None and not any(a.startswith("--window") for a in bare.arguments())


def test_the_panel_states_the_budget_in_hu_and_as_a_share_of_the_window():
    assert windowArgument((40.0, 400.0)) == "40,400" and windowArgument(None) == ""
    assert describeBudget(4, 1550.0, "HU", (40.0, 400.0)) == "about 6.275 HU, 1.6% of the display window (L40 W400)"
    assert describeBudget(4, 1550.0, "HU") == "about 24.31 HU"
    assert describeBudget(64, 50.0, "HU", (40.0, 400.0)).endswith("more than the volume's intensity range, choose "
                                                                  "a smaller budget")


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
