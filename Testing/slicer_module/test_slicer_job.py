"""A whole protection as the panel runs it: scene -> files -> engine process -> result nodes, on real MRML."""

import importlib.util
import json

import numpy as np
import pytest
import SimpleITK as sitk

from slicer_testing import addSegmentationFromLabels, addVolume, loadSampleStudy, makeMrmlApp, obliqueIjkToRas

from UMedProtectLib.settings import settings_from
from UMedProtectLib.cli.main import build_parser
from UMedProtectLib.settings import BUDGET_STEPS, PANEL_PRESETS, ProtectSettings, panel_bounds
from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.job import ProtectJob, ProtectRequest, validateRequest
from UMedProtectSlicer.labelmaps import allSegmentIds
from UMedProtectSlicer.nodes import nodeIds
from UMedProtectSlicer.outputs import REPORT_ATTRIBUTE
from UMedProtectSlicer.runner import EngineProcess
from UMedProtectSlicer.volumes import arrayFromVolumeNode, ijkToRasMatrix

needs_cli = pytest.mark.skipif(importlib.util.find_spec("UMedProtectLib.cli") is None,
                               reason="the CLI is not there yet")


@pytest.fixture
def study():
    app = makeMrmlApp()
    geometry = obliqueIjkToRas()
    z, y, x = np.mgrid[0:6, 0:40, 0:44]
    lesion = ((y - 20) / 8.0) ** 2 + ((x - 22) / 9.0) ** 2 < 1
    second = ((y - 8) ** 2 + (x - 8) ** 2 < 10) & (z == 3)
    labels = (lesion * 1 + second * 2).astype(np.uint8)
    rng = np.random.default_rng(5)
    image = (200 + 60 * np.sin(x / 3.0) + rng.normal(0, 12, labels.shape) + 180 * lesion + 90 * second).astype(np.int16)
    volume = addVolume(app.scene, image, geometry, name="Study")
    segmentation = addSegmentationFromLabels(app, labels, geometry, name="Lesions")
    return app, volume, segmentation, image, labels


def test_prepare_writes_the_volume_and_the_chosen_segments_on_its_grid(study, tmp_path):
    app, volume, segmentation, image, labels = study
    before = nodeIds(app.scene)
    second = allSegmentIds(segmentation)[1]
    job = ProtectJob(ProtectRequest(volume, segmentation, segmentIds=[second], epsilonSteps=6, bandWidth=2,
                                    preset="thorough", device="cpu", seed=3), tmp_path / "work")
    added = []
    observer = app.scene.AddObserver(app.scene.NodeAddedEvent, lambda scene, event: added.append(
        scene.GetNthNode(scene.GetNumberOfNodes() - 1).GetClassName()))
    command = job.prepare()
    app.scene.RemoveObserver(observer)
    assert nodeIds(app.scene) == before
    assert added.count("vtkMRMLLabelMapVolumeNode") == 1, "the segmentation was converted more than once"
    assert command.settings.epsilon == 6 / 255 and command.settings.band_width == 2
    assert command.settings.preset == "thorough" and command.settings.labels is None
    assert command.settings.seed == 3 and command.settings.device == "cpu"
    written = sitk.ReadImage(str(command.image))
    assert np.array_equal(sitk.GetArrayFromImage(written), image)
    label = sitk.GetArrayFromImage(sitk.ReadImage(str(command.label)))
    assert np.array_equal(label, (labels == 2).astype(label.dtype))
    job.cleanup()
    assert not (tmp_path / "work").exists()


def test_label_map_source_passes_the_label_values(study, tmp_path):
    app, volume, _, _, labels = study
    labelmap = addVolume(app.scene, labels, ijkToRasMatrix(volume), name="lm", labelmap=True)
    command = ProtectJob(ProtectRequest(volume, labelmap, labelValues=" 2 "), tmp_path).prepare()
    assert command.settings.labels == (2,)
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(command.label))), labels)


def test_invalid_requests_are_refused_in_one_sentence(study, tmp_path):
    app, volume, segmentation, _, labels = study
    labelmap = addVolume(app.scene, labels, ijkToRasMatrix(volume), name="lm", labelmap=True)
    cases = [
        (ProtectRequest(None, segmentation), "Choose a volume"),
        (ProtectRequest(labelmap, segmentation), "is a label map"),
        (ProtectRequest(volume, None), "Choose the segmentation"),
        (ProtectRequest(volume, segmentation, epsilonSteps=0), "outside 1/255"),
        (ProtectRequest(volume, segmentation, epsilonSteps=256), "outside 1/255 to 255/255"),
        (ProtectRequest(volume, segmentation, profilePath=tmp_path / "none.pt"), "does not exist"),
        (ProtectRequest(volume, segmentation, markKeyPath=tmp_path / "none.key"), "umed-protect keygen"),
        (ProtectRequest(volume, segmentation, markOnly=True), "needs a key file"),
    ]
    for request, text in cases:
        with pytest.raises(UserFacingError, match=text):
            validateRequest(request)


def test_settings_the_engine_refuses_are_refused_in_one_sentence(study, tmp_path):
    app, volume, _, _, labels = study
    labelmap = addVolume(app.scene, labels, ijkToRasMatrix(volume), name="lm", labelmap=True)
    for request, text in ((ProtectRequest(volume, labelmap, labelValues="1,x"), "comma-separated integers"),
                          (ProtectRequest(volume, labelmap, bandWidth=17), "Band width 17 must be"),
                          (ProtectRequest(volume, labelmap, device="gpu"), "Device 'gpu' is unknown")):
        with pytest.raises(UserFacingError, match=text) as caught:
            ProtectJob(request, tmp_path / "w").prepare()
        assert "\n" not in str(caught.value)


def test_panel_fields_to_engine_settings_round_trip_through_the_real_parser(study, tmp_path):
    """Parameter node values -> request (as the panel builds it) -> arguments -> the CLI's parser -> settings."""
    app, volume, _, _, labels = study
    labelmap = addVolume(app.scene, labels, ijkToRasMatrix(volume), name="lm", labelmap=True)
    volume.GetDisplayNode().SetAutoWindowLevel(False)
    volume.GetDisplayNode().SetWindowLevel(1500, -600)
    low, high = BUDGET_STEPS
    panels = [  # the parameter node's fields: typical values, then every range's ends
        (dict(labelValues="2, 1", epsilonSteps=6, bandWidth=2, preset="thorough", device="cpu", seed=3),
         ProtectSettings(epsilon=6 / 255, window="-600,1500", band_width=2, labels=(1, 2), preset="thorough",
                         device="cpu", seed=3)),
        (dict(labelValues="", epsilonSteps=high, bandWidth=panel_bounds("band_width")[1], preset=PANEL_PRESETS[-1],
              device="cuda:1", seed=panel_bounds("seed")[1]),
         ProtectSettings(epsilon=1.0, window="-600,1500", band_width=16, preset="thorough", device="cuda:1",
                         seed=2**31 - 1)),
        (dict(labelValues="", epsilonSteps=low, bandWidth=panel_bounds("band_width")[0], preset=PANEL_PRESETS[0],
              device="auto", seed=panel_bounds("seed")[0]),
         ProtectSettings(epsilon=1 / 255, window="-600,1500", band_width=1, preset="fast")),
    ]
    for index, (fields, expected) in enumerate(panels):
        command = ProtectJob(ProtectRequest(volume, labelmap, **fields), tmp_path / str(index)).prepare()
        parsed = settings_from(build_parser().parse_args(command.arguments()))
        for name in ProtectSettings.__dataclass_fields__:
            assert getattr(parsed, name) == getattr(expected, name), (index, name)
    # A request with the panel's defaults means the engine's defaults, the budget included: no budget and no window
    # are given, so the engine resolves its default for the study exactly as `umed-protect protect` does.
    command = ProtectJob(ProtectRequest(volume, labelmap), tmp_path / "defaults").prepare()
    assert not any(a.startswith(("--epsilon", "--window")) for a in command.arguments())
    assert settings_from(build_parser().parse_args(command.arguments())) == ProtectSettings()


@needs_cli
def test_full_run_creates_result_nodes_and_leaves_the_input_alone(study, tmp_path):
    app, volume, segmentation, image, labels = study
    job = ProtectJob(ProtectRequest(volume, segmentation, epsilonSteps=8, device="cpu", iterations=1), tmp_path / "w")
    process = EngineProcess(job.prepare())
    process.start()
    events = []
    process.wait(timeout=300, onEvent=events.append)
    assert process.failureMessage() is None, process.errorLines
    assert events
    before = nodeIds(app.scene)
    results = job.loadResults()
    added = nodeIds(app.scene) - before
    assert {results.protectedNode.GetID(), results.differenceNode.GetID(), results.metricsTableNode.GetID()} <= added
    protected = arrayFromVolumeNode(results.protectedNode)
    difference = arrayFromVolumeNode(results.differenceNode)
    assert np.array_equal(arrayFromVolumeNode(volume), image)
    assert protected.dtype == image.dtype and np.allclose(ijkToRasMatrix(results.protectedNode), ijkToRasMatrix(volume))
    budget = results.report["epsilon_native"]
    assert np.abs(protected.astype(float) - image).max() <= budget + 1e-6
    assert np.allclose(difference, protected.astype(np.float32) - image)
    # Far from every labelled voxel (more than the band and the in-plane margin) nothing changes.
    from scipy import ndimage

    near = ndimage.binary_dilation(labels > 0, iterations=12)
    assert np.array_equal(protected[~near], image[~near])
    assert json.loads(results.protectedNode.GetAttribute(REPORT_ATTRIBUTE))["psnr_db"] == results.report["psnr_db"]
    assert results.differenceNode.GetDisplayNode().GetWindow() == pytest.approx(2 * budget)
    job.cleanup()


@needs_cli
def test_sample_study_through_the_engine(sample_files, tmp_path):
    app = makeMrmlApp()
    volume, labelmap, segmentation = loadSampleStudy(app, sample_files, "mni152 slab")
    job = ProtectJob(ProtectRequest(volume, segmentation, device="cpu", iterations=0), tmp_path / "w")
    process = EngineProcess(job.prepare())
    process.start()
    process.wait(timeout=300)
    assert process.failureMessage() is None, process.errorLines
    results = job.loadResults()
    original = arrayFromVolumeNode(volume)
    protected = arrayFromVolumeNode(results.protectedNode)
    assert protected.shape == original.shape and protected.dtype == original.dtype
    assert np.abs(protected.astype(float) - original).max() <= results.report["epsilon_native"] + 1e-6
    assert results.report["roi_voxels"] == int((arrayFromVolumeNode(labelmap) > 0).sum())
    job.cleanup()


def test_unreadable_results_leave_the_scene_unchanged(study, tmp_path):
    app, volume, segmentation, _, _ = study
    job = ProtectJob(ProtectRequest(volume, segmentation), tmp_path)
    job.prepare()
    job.path("report.json").write_text("{}")
    before = nodeIds(app.scene)
    with pytest.raises(UserFacingError, match="could not be read"):
        job.loadResults()
    assert nodeIds(app.scene) == before


@needs_cli
def test_engine_killed_mid_run_leaves_the_scene_as_it_was_and_says_so(study, tmp_path):
    import os
    import signal
    import time

    app, volume, segmentation, image, _ = study
    job = ProtectJob(ProtectRequest(volume, segmentation, device="cpu", iterations=100000), tmp_path / "w")
    process = EngineProcess(job.prepare())
    before = nodeIds(app.scene)
    process.start()
    deadline = time.monotonic() + 240
    while not process.poll() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.process.pid, signal.SIGKILL)  # as the system's out-of-memory killer would: no cleanup runs
    process.wait(timeout=60)
    assert process.process.returncode == -signal.SIGKILL
    message = process.failureMessage()
    assert message and "killed (SIGKILL)" in message and "\n" not in message
    assert not process.command.output.exists() and not process.command.report.exists()
    assert nodeIds(app.scene) == before and np.array_equal(arrayFromVolumeNode(volume), image)
    job.cleanup()
    assert not (tmp_path / "w").exists()


def test_mark_with_key_reaches_the_engine_as_the_command_line_gives_it(study, tmp_path):
    """The panel's "Mark with key": --mark KEY, and design none for "Mark only", through the CLI's real parser."""
    app, volume, segmentation, _, _ = study
    key = tmp_path / "owner.key"
    key.write_text("placeholder")
    for markOnly, design in ((False, ProtectSettings().design), (True, "none")):
        command = ProtectJob(ProtectRequest(volume, segmentation, markKeyPath=key, markOnly=markOnly),
                             tmp_path / str(markOnly)).prepare()
        args = build_parser().parse_args(command.arguments())
        assert args.mark == str(key) and settings_from(args).design == design
