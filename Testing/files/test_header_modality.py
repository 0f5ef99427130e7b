"""A study's own header tells a CT in HU (issue 37): pydicom's CT and MR test files, and a real head CT cropped to the
brain, where the air rule alone sees no CT; every report and the console name the rule that decided and why."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from UMedProtectLib.cli.main import main
from UMedProtectLib.files.dicom.series import read_series
from UMedProtectLib.files.header_modality import dicom_modality
from UMedProtectLib.files.preview import CAPTION_HEIGHT, GAP
from UMedProtectLib.method.modality import is_ct_in_hu

from dicom_testing import new_study, write_ct_series

FAST = ["--iterations", "0", "--progress", "none"]


def _protect(image: Path, label: Path, folder: Path, capsys, *options: str):
    """Run `protect` in-process; returns the report's reading and budget, and the console's text."""
    report = folder / "report.json"
    code = main(["protect", *FAST, "--image", str(image), "--label", str(label), "--output",
                 str(folder / "out.nrrd"), "--report", str(report), "--overwrite", *options])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(report.read_text()), captured.out


def _disc_label(reference: sitk.Image, path: Path, radius: float) -> Path:
    """A disc label in the middle of every slice, on the reference's grid."""
    size = reference.GetSize()
    y, x = np.mgrid[:size[1], :size[0]]
    disc = ((y - size[1] / 2) ** 2 + (x - size[0] / 2) ** 2 < radius ** 2).astype(np.uint8)
    label = sitk.GetImageFromArray(np.repeat(disc[None], size[2] if len(size) == 3 else 1, axis=0))
    label.CopyInformation(reference)
    sitk.WriteImage(label, str(path))
    return path


def _dicom_file_study(name: str, folder: Path):
    """One of pydicom's test files as a one-file series folder, with a disc label on its grid."""
    series = folder / name.split(".")[0]
    series.mkdir()
    shutil.copy(get_testdata_file(name), series)
    image = read_series(series).image
    return series, _disc_label(image.image, folder / "disc.nrrd", 10), image.array


def test_pydicoms_ct_gets_the_ct_default_by_its_header_although_it_holds_too_little_air(tmp_path, capsys):
    series, label, array = _dicom_file_study("CT_small.dcm", tmp_path)
    assert not is_ct_in_hu(array)  # the air rule alone would have read it as not a CT (the 25.8 HU budget)
    report, console = _protect(series, label, tmp_path, capsys)
    assert report["reading"]["ct_in_hu"] and report["reading"]["rule"] == "header"
    assert "Modality CT with a rescale to HU (intercept -1024" in report["reading"]["reason"]
    assert report["epsilon_given"].startswith("the default for a CT in HU")
    assert report["standard_windows"]
    assert "read as a CT in HU (rule: header): DICOM Modality CT" in console
    # --modality still wins over the header, and says so.
    given, console = _protect(series, label, tmp_path, capsys, "--modality", "other", "--epsilon", "4/255",
                              "--preview", str(tmp_path / "other.png"))
    assert not given["reading"]["ct_in_hu"] and given["reading"]["rule"] == "given"
    assert "read as not a CT in HU (rule: given): --modality other was given" in console
    # Read as a CT with the same budget in the robust range, the preview adds a row in the CT window of its tissue.
    ct, _ = _protect(series, label, tmp_path, capsys, "--epsilon", "4/255", "--preview", str(tmp_path / "ct.png"))
    assert ct["reading"]["covering_windows"] and ct["visibility"]["window"]["name"] == "robust range"
    rows = Image.open(tmp_path / "ct.png").height - Image.open(tmp_path / "other.png").height
    assert rows == CAPTION_HEIGHT + 320 + GAP  # 128 x 128 square pixels shown 320 high


def test_pydicoms_mr_is_read_as_not_a_ct_by_its_header(tmp_path, capsys):
    series, label, _ = _dicom_file_study("MR_small.dcm", tmp_path)
    report, console = _protect(series, label, tmp_path, capsys)
    assert report["reading"] | {"roi_median": 0, "step": 0} == {
        "ct_in_hu": False, "rule": "header", "reason": "DICOM Modality MR", "roi_median": 0, "step": 0,
        "covering_windows": []}
    assert report["epsilon_given"].startswith("the default 4/255 of the robust range")


def test_a_ct_header_without_hu_is_not_read_as_hu():
    header = dcmread(get_testdata_file("CT_small.dcm"), stop_before_pixels=True)
    assert dicom_modality(header).ct
    header.RescaleType = "US"
    assert not dicom_modality(header).ct and "'US', not HU" in dicom_modality(header).says
    del header.RescaleType
    del header.RescaleIntercept
    assert not dicom_modality(header).ct and "not HU" in dicom_modality(header).says
    del header.Modality
    assert dicom_modality(header) is None


@pytest.fixture(scope="module")
def brain_crop():
    """Six slices of Debian's real head CT cropped to a 64 x 64 box inside the brain: no air, no bone, in HU."""
    from UMedProtectLib.errors import InputError
    from UMedProtectLib.evaluation.corpora.ct_lesions import brain_mask, head_ct

    try:
        hu, _ = head_ct()
    except InputError as error:
        pytest.skip(f"the head CT of Debian's invesalius-examples is not installed ({error})")
    brain = brain_mask(hu)
    z = int(np.argmax(brain.reshape(len(brain), -1).sum(axis=1)))
    rows, columns = np.nonzero(brain[z])
    y, x = int(np.median(rows)), int(np.median(columns))
    crop = np.round(hu[z - 3:z + 3, y - 32:y + 32, x - 32:x + 32]).astype(np.int16)
    assert brain[z - 3:z + 3, y - 32:y + 32, x - 32:x + 32].mean() > 0.99 and not is_ct_in_hu(crop)
    return crop


def test_a_ct_cropped_to_the_brain_gets_the_ct_default_from_a_dicom_or_nifti_header(tmp_path, capsys, brain_crop):
    import nibabel

    files = write_ct_series(tmp_path / "ct", brain_crop, new_study())
    label = _disc_label(read_series(tmp_path / "ct").image.image, tmp_path / "disc.nrrd", 8)
    report, console = _protect(tmp_path / "ct", label, tmp_path, capsys)
    assert report["reading"]["ct_in_hu"] and report["reading"]["rule"] == "header"
    assert report["reading"]["covering_windows"][0] == "brain"
    assert report["epsilon_given"].startswith("the default for a CT in HU: one grey level of the brain window")
    assert "rule: header" in console and len(files) == len(brain_crop)
    # The same crop as a NIfTI that keeps the CT's rescale (as dcm2niix writes it): the header still tells it.
    nifti = nibabel.Nifti1Image(np.transpose(brain_crop + 1024, (2, 1, 0)).astype(np.int16), np.eye(4))
    nifti.header.set_slope_inter(1.0, -1024.0)
    nibabel.save(nifti, tmp_path / "crop.nii")
    label = _disc_label(sitk.ReadImage(str(tmp_path / "crop.nii")), tmp_path / "disc.nii", 8)
    report, _ = _protect(tmp_path / "crop.nii", label, tmp_path, capsys)
    assert report["reading"]["ct_in_hu"] and "NIfTI rescale slope 1, intercept -1024" in report["reading"]["reason"]
    assert report["reading"]["covering_windows"][0] == "brain"


def test_a_headerless_crop_is_left_to_the_air_rule_which_says_why_and_the_way_out(tmp_path, capsys, brain_crop):
    for name, voxels in (("crop.nrrd", brain_crop), ("crop-float.nrrd", brain_crop.astype(np.float32))):
        image = sitk.GetImageFromArray(voxels)
        sitk.WriteImage(image, str(tmp_path / name))
    label = _disc_label(image, tmp_path / "disc.nrrd", 8)
    # Floating point: protected as not a CT, and the console says which rule decided, why, and the way out.
    report, console = _protect(tmp_path / "crop-float.nrrd", label, tmp_path, capsys)
    assert not report["reading"]["ct_in_hu"] and report["reading"]["rule"] == "air"
    assert "0.0 % of its voxels lie at air" in report["reading"]["reason"]
    assert "read as not a CT in HU (rule: air)" in console and "give --modality ct" in console
    # Whole HU: 4/255 of the brain's narrow robust range is below one HU; the refusal names the reading, not a budget.
    code = main(["protect", *FAST, "--image", str(tmp_path / "crop.nrrd"), "--label", str(label), "--output",
                 str(tmp_path / "refused.nrrd")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("umed-protect: error: the budget (the default 4/255")
    assert "read as not a CT in HU: 0.0 % of its voxels lie at air" in lines[0] and "--modality ct" in lines[0]
    said, _ = _protect(tmp_path / "crop.nrrd", label, tmp_path, capsys, "--modality", "ct")
    assert said["reading"]["ct_in_hu"] and said["reading"]["covering_windows"][0] == "brain"


def test_fit_profile_reads_each_studys_header_as_protect_does(tmp_path, capsys):
    from UMedProtectLib import load_profile

    series, label, _ = _dicom_file_study("CT_small.dcm", tmp_path)
    (tmp_path / "studies.csv").write_text(f"image,label\n{series.name},{label.name}\n")
    report, _ = _protect(series, label, tmp_path, capsys)
    code = main(["fit-profile", "--dataset", str(tmp_path / "studies.csv"), "--profile-out", str(tmp_path / "p.pt"),
                 "--iterations", "0", "--progress", "none"])
    assert code == 0, capsys.readouterr().err
    info = load_profile(tmp_path / "p.pt").info
    # The profile is fitted at the CT default the header gave protect, not at 4/255 of the robust range.
    assert info["fitted_epsilon"] == pytest.approx(report["epsilon"])
    assert report["epsilon"] != pytest.approx(4 / 255)
