"""A CT in the panel with every default and `umed-protect protect` with every default: the same budget, the same
warnings and byte-identical protected voxels (issue 36)."""

import json

import numpy as np
import pytest
import SimpleITK as sitk

from conftest import sitk_image
from dicom_testing import ct_study
from slicer_testing import loadSampleStudy, makeMrmlApp

from UMedProtectLib.cli.main import main
from UMedProtectSlicer.budget import resolveBudget
from UMedProtectSlicer.job import ProtectRequest
from UMedProtectSlicer.labelmaps import regionMask
from UMedProtectSlicer.logic import ProtectionLogic
from UMedProtectSlicer.volumes import arrayFromVolumeNode

# The fit is shortened alike on both sides (it does not touch the budget); everything else is the default.
ITERATIONS = ["--iterations", "2"]
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)


def head_ct_slab() -> tuple:
    """Three slices through the brain of Debian's invesalius head CT, and the brain."""
    corpus = pytest.importorskip("UMedProtectLib.evaluation.corpora.ct_lesions")
    if not corpus.SOURCE.is_file():
        pytest.skip(f"the head CT is not installed ({corpus.INSTALL_HINT})")
    return corpus.head_ct_slab()


def synthetic_ct() -> tuple:
    """The tests' CT-like study (body in air, a hypodense lesion), lesion as label 1."""
    hu, masks = ct_study()
    return hu, masks["lesion"].astype(np.uint8)


def rounded(figures) -> object:
    """A report block with every float rounded to 9 significant digits."""
    return json.loads(json.dumps(figures), parse_float=lambda text: float(f"{float(text):.9g}"))


@pytest.fixture(params=[synthetic_ct, head_ct_slab], ids=["synthetic-ct", "head-ct"])
def ct_files(request, tmp_path):
    """The CT and its label as NRRD files, read the same way by Slicer and by the command line."""
    image, label = request.param()
    paths = tmp_path / "ct.nrrd", tmp_path / "ct_label.nrrd"
    # A right-handed axial grid, as scanners write: Slicer keeps its voxel order (it reverses the slices of a
    # left-handed one, and the fit then meets the slices in another order).
    for array, path in zip((image, label), paths):
        sitk.WriteImage(sitk_image(array, direction=AXIAL), str(path), True)
    return paths


def test_the_panels_default_is_the_command_lines_budget_and_bytes(ct_files, tmp_path):
    image_path, label_path = ct_files
    cli_out, cli_report = tmp_path / "cli_protected.nrrd", tmp_path / "cli_report.json"
    assert main(["protect", "--image", str(image_path), "--label", str(label_path), "--output", str(cli_out),
                 "--report", str(cli_report), "--device", "cpu", "--progress", "none", *ITERATIONS]) == 0
    expected = json.loads(cli_report.read_text())

    app = makeMrmlApp()
    volume, _, segmentation = loadSampleStudy(app, ct_files, "CT")
    # What the panel shows before Protect is what the command line resolved.
    shown, ct_in_hu = resolveBudget(arrayFromVolumeNode(volume), regionMask(volume, segmentation))
    assert ct_in_hu and expected["reading"]["ct_in_hu"]
    assert (shown.native, shown.given) == (expected["epsilon_native"], expected["epsilon_given"])

    results = ProtectionLogic(app.scene, workRoot=tmp_path).protect(
        ProtectRequest(volume, segmentation, device="cpu", iterations=int(ITERATIONS[1])), waitForCompletion=True,
        timeout=600)
    report = results.report
    for key in ("epsilon", "epsilon_native", "epsilon_given", "warnings"):
        assert report[key] == expected[key], key
    for key in ("standard_windows", "mean_shift", "texture", "visibility"):  # sums may differ in the last bit
        assert rounded(report[key]) == rounded(expected[key]), key
    panel = arrayFromVolumeNode(results.protectedNode)
    command_line = sitk.GetArrayFromImage(sitk.ReadImage(str(cli_out)))
    assert panel.dtype == command_line.dtype and panel.shape == command_line.shape
    assert panel.tobytes() == command_line.tobytes()
    assert np.any(panel != arrayFromVolumeNode(volume)), "the protection changed nothing"

    # The metrics table carries what the command line reports, in reading order: visible?, then what it does.
    table = results.metricsTableNode
    rows = [(table.GetCellText(r, 0), table.GetCellText(r, 1)) for r in range(table.GetNumberOfRows())]
    labels = [label for label, _ in rows]
    per_window = [(label, value) for label, value in rows if label.startswith("Largest change in the ")]
    assert [seen["window"]["name"] for seen in expected["standard_windows"]] == ["brain", "soft-tissue", "lung",
                                                                                 "bone"]
    assert per_window == [(f"Largest change in the {seen['window']['name']} window (L{seen['window']['level']:.4g} "
                           f"W{seen['window']['width']:.4g}), grey levels", f"{255 * seen['max_change_of_window']:.2f}")
                          for seen in expected["standard_windows"]]
    assert [value for label, value in rows if label == "Warning"] == expected["warnings"]
    assert dict(rows)["Local noise in the region, after / before"] == f"x{expected['texture']['roi_texture_ratio']:.2f}"
    assert "Local noise in the band around the edge, after / before" in labels
    assert dict(rows)["Mean change in the region"].startswith(f"{expected['mean_shift']['native']:+.3g} HU")
    assert dict(rows)["Budget"] == expected["epsilon_given"]
    assert labels.index(per_window[-1][0]) < labels.index("Protection evidence") < labels.index(
        "PSNR, whole volume (dB)")
    # The exported sidecar carries the whole report, as the command line writes it.
    folder = tmp_path / "export"
    folder.mkdir()
    exported = ProtectionLogic(app.scene).exportResults(folder, ".nrrd", volume, results.protectedNode)
    sidecar = json.loads(exported.sidecar.read_text())
    for key in ("standard_windows", "mean_shift", "texture", "threat_model", "warnings", "epsilon_given"):
        assert rounded(sidecar["report"][key]) == rounded(expected[key]), key
    assert sidecar["metrics"]["texture.roi_texture_ratio"] == report["texture"]["roi_texture_ratio"]
