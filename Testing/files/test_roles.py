"""Inputs given in each other's roles (issue 37): refused before any work with one line that names the swap, and the
label kinds listed in full; real files: the demo's own study, a CT series with its SEG written by pydicom and
highdicom."""

import os

import pytest

from UMedProtectLib.cli.main import main
from UMedProtectLib.files.formats import LABEL_KINDS
from UMedProtectLib.files.roles import SWAPPED

from dicom_testing import ct_study, new_study, write_ct_series, write_seg


@pytest.fixture
def dicom_study(tmp_path):
    """A CT series folder and its SEG."""
    hu, masks = ct_study()
    files = write_ct_series(tmp_path / "ct", hu, new_study())
    write_seg(tmp_path / "seg.dcm", files, masks)
    return tmp_path / "ct", tmp_path / "seg.dcm"


def _refusal(capsys, image, label, output):
    """The one line `protect` answers with (exit 2), after checking that nothing was written."""
    code = main(["protect", "--iterations", "0", "--progress", "none", "--image", str(image), "--label", str(label),
                 "--output", str(output)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("umed-protect: error: "), lines
    assert not os.path.exists(output)
    return lines[0]


def test_the_demos_image_and_label_swapped_are_named_as_swapped(tmp_path, capsys, sample_files):
    image, label = sample_files
    line = _refusal(capsys, label, image, tmp_path / "out.nrrd")
    assert "holds only the values 0, 1, like a label map" in line and SWAPPED in line
    assert "budget" not in line  # not the misleading advice to raise the budget
    assert main(["protect", "--iterations", "0", "--progress", "none", "--image", str(image), "--label", str(label),
                 "--output", str(tmp_path / "out.nrrd")]) == 0  # the right way round it runs


def test_a_series_folder_given_as_the_label_is_named_with_every_label_kind(tmp_path, capsys, dicom_study,
                                                                           sample_files):
    series, seg = dicom_study
    for image in (seg, sample_files[1]):  # the SEG or a label map as the image, the series as the label
        line = _refusal(capsys, image, series, tmp_path / "out")
        assert f"label {str(series)!r} is a folder or DICOMDIR, which holds an image series" in line
        assert SWAPPED in line and line.endswith(f"A label is {LABEL_KINDS}")
    for kind in (".nrrd", ".nii.gz", ".mha", ".seg.nrrd", "DICOM SEG", "RTSTRUCT"):
        assert kind in LABEL_KINDS


def test_a_dicom_label_given_as_the_image_is_named_as_swapped(tmp_path, capsys, dicom_study, sample_files):
    _, seg = dicom_study
    line = _refusal(capsys, seg, sample_files[1], tmp_path / "out.nrrd")
    assert f"image {str(seg)!r} is a DICOM SEG, a label; {SWAPPED}" in line


def test_a_label_of_no_label_kind_lists_every_kind(tmp_path, capsys, dicom_study, sample_files):
    series, _ = dicom_study
    picture = tmp_path / "label.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n")
    line = _refusal(capsys, sample_files[0], picture, tmp_path / "out.nrrd")
    assert line.endswith(f"label {str(picture)!r} has an unsupported file type; a label is {LABEL_KINDS}")
    slice_file = sorted(series.iterdir())[0]  # one of the series' own CT slices as the label
    line = _refusal(capsys, series, slice_file, tmp_path / "out")
    assert f"is a DICOM CT, not a label; a label is {LABEL_KINDS}" in line


def test_the_help_names_every_label_kind(capsys):
    assert main(["protect", "--help"]) == 0
    assert " ".join(capsys.readouterr().out.split()).count(" ".join(LABEL_KINDS.split())) == 1
