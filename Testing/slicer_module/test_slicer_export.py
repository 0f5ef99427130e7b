"""Export through Slicer's storage nodes to NRRD and NIfTI, read back with independent readers (pynrrd, nibabel,
SimpleITK), and the JSON sidecar."""

import hashlib
import json

import nibabel
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from dicom_testing import (assert_labels_the_derived_series, ct_study, new_study, write_ct_series, write_rtstruct,
                           write_seg)
from slicer_testing import addSegmentationFromLabels, addVolume, loadVolumeFile, lpsToRas, makeMrmlApp, obliqueIjkToRas

from UMedProtectSlicer.errors import UserFacingError
from UMedProtectSlicer.export import DICOM_FORMAT, exportResults, plannedPaths, safeBaseName, writeVolumeNode
from UMedProtectSlicer.labelmaps import allSegmentIds
from UMedProtectSlicer.nodes import nodeIds
from UMedProtectSlicer.outputs import createDifferenceVolume, createProtectedVolume
from UMedProtectSlicer.volumes import arrayFromVolumeNode, ijkToRasMatrix

REPORT = {"psnr_db": 50.1, "ssim": 0.998, "linf_native": 11.0, "epsilon_native": 11.8, "changed_fraction": 0.02,
          "settings": {"epsilon": 4 / 255, "band_width": 3, "preset": "fast", "seed": 0}, "warnings": []}


def readNrrd(path):
    """(k, j, i) voxels and RAS IJK-to-world matrix of a NRRD file, by pynrrd (no ITK, no VTK)."""
    data, header = nrrd.read(str(path))  # pynrrd returns (i, j, k) order
    assert header["space"] in ("left-posterior-superior", "LPS")
    matrix = np.eye(4)
    matrix[:3, :3] = np.asarray(header["space directions"], dtype=float).T
    matrix[:3, 3] = np.asarray(header["space origin"], dtype=float)
    return np.transpose(data, (2, 1, 0)), lpsToRas(matrix)


def readNifti(path):
    """(k, j, i) voxels and RAS matrix of a NIfTI file, by nibabel."""
    image = nibabel.load(str(path))
    return np.transpose(np.asanyarray(image.dataobj), (2, 1, 0)), image.affine


@pytest.fixture
def study():
    app = makeMrmlApp()
    geometry = obliqueIjkToRas()
    rng = np.random.default_rng(4)
    labels = np.zeros((7, 12, 14), np.uint8)
    labels[2:5, 3:8, 4:9] = 1
    labels[4:6, 8:11, 9:13] = 2
    image = rng.integers(-500, 1500, labels.shape).astype(np.int16)
    volume = addVolume(app.scene, image, geometry, name="Patient 7 / CT")
    segmentation = addSegmentationFromLabels(app, labels, geometry, name="organs")
    protectedArray = image + rng.integers(-11, 12, image.shape).astype(np.int16) * (labels > 0)
    protected = createProtectedVolume(volume, protectedArray)
    difference = createDifferenceVolume(volume, (protectedArray - image).astype(np.float32), 11.8)
    return app, volume, segmentation, labels, protected, difference, protectedArray


@pytest.mark.parametrize("fileFormat,reader", [(".nrrd", readNrrd), (".nii.gz", readNifti)])
def test_export_reads_back_equal_with_an_independent_reader(study, tmp_path, fileFormat, reader):
    app, volume, segmentation, labels, protected, difference, protectedArray = study
    before = nodeIds(app.scene)
    exported = exportResults(tmp_path, fileFormat, volume, protected, REPORT, differenceNode=difference,
                             labelSourceNode=segmentation, extraVersions={"Slicer": "test"})
    assert nodeIds(app.scene) == before, "export changed the scene"
    assert set(exported.files) == {"protected", "difference", "label"}
    for path in exported.files.values():
        assert path.name.startswith("Patient_7_CT_") and path.name.endswith(fileFormat)
    voxels, matrix = reader(exported.files["protected"])
    assert voxels.dtype == np.int16 and np.array_equal(voxels, protectedArray)
    # NIfTI stores the matrix in float32: compare to that precision.
    assert np.allclose(matrix, ijkToRasMatrix(volume), atol=1e-4)
    diffVoxels, _ = reader(exported.files["difference"])
    assert np.allclose(diffVoxels, protectedArray.astype(np.float32) - arrayFromVolumeNode(volume))
    labelVoxels, labelMatrix = reader(exported.files["label"])
    assert np.array_equal(labelVoxels, labels) and np.allclose(labelMatrix, matrix, atol=1e-4)
    # SimpleITK agrees too.
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(exported.files["protected"]))), protectedArray)
    assert not list(tmp_path.glob(".*partial*")), "temporary files were left behind"

    sidecar = json.loads(exported.sidecar.read_text())
    assert exported.sidecar.name == "Patient_7_CT_protected.json"
    for role, path in exported.files.items():
        assert sidecar["files"][role]["file"] == path.name
        assert sidecar["files"][role]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sidecar["settings"] == REPORT["settings"]
    assert sidecar["metrics"]["psnr_db"] == 50.1 and sidecar["metrics"]["linf_native"] == 11.0
    assert sidecar["versions"]["Slicer"] == "test" and sidecar["versions"]["numpy"] == np.__version__
    assert sidecar["versions"]["UMedProtectLib"]
    assert sidecar["source"]["volume"] == "Patient 7 / CT"
    assert [entry["label"] for entry in sidecar["source"]["labels"]] == [1, 2]
    assert np.allclose(sidecar["geometry"]["ijk_to_ras"], ijkToRasMatrix(volume))


def test_export_only_the_protected_volume_and_chosen_segments(study, tmp_path):
    app, volume, segmentation, labels, protected, _, _ = study
    second = allSegmentIds(segmentation)[1]
    exported = exportResults(tmp_path, ".nrrd", volume, protected, REPORT, labelSourceNode=segmentation,
                             segmentIds=[second])
    assert set(exported.files) == {"protected", "label"}
    labelVoxels, _ = readNrrd(exported.files["label"])
    assert np.array_equal(labelVoxels, (labels == 2).astype(np.uint8))


def test_export_refuses_to_overwrite_unless_asked(study, tmp_path):
    _, volume, _, _, protected, _, protectedArray = study
    first = exportResults(tmp_path, ".nrrd", volume, protected, REPORT)
    stamp = first.files["protected"].stat().st_mtime_ns
    with pytest.raises(UserFacingError, match="already exists"):
        exportResults(tmp_path, ".nrrd", volume, protected, REPORT)
    assert first.files["protected"].stat().st_mtime_ns == stamp
    again = exportResults(tmp_path, ".nrrd", volume, protected, REPORT, overwrite=True)
    assert np.array_equal(readNrrd(again.files["protected"])[0], protectedArray)


def test_export_errors_are_one_sentence(study, tmp_path):
    _, volume, _, _, protected, _, _ = study
    with pytest.raises(UserFacingError, match="does not exist"):
        exportResults(tmp_path / "missing", ".nrrd", volume, protected, REPORT)
    with pytest.raises(UserFacingError, match="Unknown export format"):
        exportResults(tmp_path, ".mha", volume, protected, REPORT)
    with pytest.raises(UserFacingError, match=".nrrd or .nii.gz"):
        writeVolumeNode(protected, tmp_path / "x.png")


def test_names_and_planned_paths(tmp_path):
    assert safeBaseName("  a/b: c  ") == "a_b_c"
    assert safeBaseName("///") == "volume"
    paths = plannedPaths(tmp_path, "CT", ".nii.gz", withDifference=False, withLabel=True)
    assert {k: p.name for k, p in paths.items()} == {
        "protected": "CT_protected.nii.gz", "label": "CT_label.nii.gz", "sidecar": "CT_protected.json"}


@pytest.mark.parametrize("fileFormat,reader", [(".nrrd", readNrrd), (".nii.gz", readNifti)])
def test_sample_study_export_round_trip(sample_files, tmp_path, fileFormat, reader):
    app = makeMrmlApp()
    image_path, label_path = sample_files
    volume = loadVolumeFile(app.scene, image_path, "mni152 slab")
    labelmap = loadVolumeFile(app.scene, label_path, "ventricles", labelmap=True)
    image = arrayFromVolumeNode(volume)
    protected = createProtectedVolume(volume, image)
    exported = exportResults(tmp_path, fileFormat, volume, protected, REPORT, labelSourceNode=labelmap)
    voxels, matrix = reader(exported.files["protected"])
    assert np.array_equal(voxels, image)
    # The sample's own geometry (read by SimpleITK from the original file) is what the export carries.
    original = sitk.ReadImage(str(image_path))
    lps = np.eye(4)
    lps[:3, :3] = np.array(original.GetDirection()).reshape(3, 3) @ np.diag(original.GetSpacing())
    lps[:3, 3] = original.GetOrigin()
    assert np.allclose(matrix, lpsToRas(lps), atol=1e-4)
    labelVoxels, _ = reader(exported.files["label"])
    assert np.array_equal(labelVoxels, sitk.GetArrayFromImage(sitk.ReadImage(str(label_path))))


def test_dicom_series_export_through_the_engine_writer_reads_back_with_gdcm_and_pydicom(tmp_path):
    import pydicom

    app = makeMrmlApp()
    hu, masks = ct_study()
    uids = new_study()
    files = write_ct_series(tmp_path / "source", hu, uids)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(tmp_path / "source")))
    source = reader.Execute()
    lps = np.eye(4)
    lps[:3, :3] = np.array(source.GetDirection()).reshape(3, 3) @ np.diag(source.GetSpacing())
    lps[:3, 3] = source.GetOrigin()
    volume = addVolume(app.scene, hu, lpsToRas(lps), name="CT 3")  # as the DICOM module loads it: HU, RAS
    protectedArray = (hu + np.random.default_rng(1).integers(-12, 13, hu.shape) * masks["lesion"]).astype(np.int16)
    protected = createProtectedVolume(volume, protectedArray)
    report = dict(REPORT, epsilon_given="12 HU", epsilon_native=12.0)
    out = tmp_path / "export"
    out.mkdir()
    with pytest.raises(UserFacingError, match="not loaded from DICOM"):
        exportResults(out, DICOM_FORMAT, volume, protected, report)
    exported = exportResults(out, DICOM_FORMAT, volume, protected, report, dicomFiles=files)
    series = exported.files["protected"]
    assert series == out / "CT_3_protected"
    assert sorted(p.name for p in series.iterdir()) == sorted(p.name for p in files)
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(series)))
    assert np.array_equal(sitk.GetArrayFromImage(reader.Execute()), protectedArray)
    derived = pydicom.dcmread(series / files[0].name)
    original = pydicom.dcmread(files[0])
    assert list(derived.ImageType[:2]) == ["DERIVED", "SECONDARY"] and "12 HU" in derived.DerivationDescription
    assert derived.StudyInstanceUID == original.StudyInstanceUID != "" and derived.PatientID == original.PatientID
    assert derived.SeriesInstanceUID != original.SeriesInstanceUID
    sidecar = json.loads(exported.sidecar.read_text())
    assert sidecar["files"]["protected"]["file"] == "CT_3_protected"
    assert len(sidecar["files"]["protected"]["sha256"]) == 64
    with pytest.raises(UserFacingError, match="already exists"):
        exportResults(out, DICOM_FORMAT, volume, protected, report, dicomFiles=files)
    # A segmentation loaded from a DICOM SEG or RTSTRUCT goes with the series, re-pointed at it; dciodvfy accepts all.
    write_seg(tmp_path / "seg.dcm", files, masks)
    write_rtstruct(tmp_path / "rt.dcm", files, masks, uids)
    segmentation = addSegmentationFromLabels(app, masks["lesion"].astype(np.uint8), lpsToRas(lps), name="Lesion")
    for index, label in enumerate((tmp_path / "seg.dcm", tmp_path / "rt.dcm")):
        (tmp_path / f"with-label-{index}").mkdir()
        withLabel = exportResults(tmp_path / f"with-label-{index}", DICOM_FORMAT, volume, protected, report,
                                  labelSourceNode=segmentation, dicomFiles=files, dicomLabelFiles=[label])
        assert withLabel.files["label"] == tmp_path / f"with-label-{index}" / "CT_3_label.dcm"
        assert_labels_the_derived_series(tmp_path / "source", label, withLabel.files["protected"],
                                         withLabel.files["label"])
        sidecar = json.loads(withLabel.sidecar.read_text())
        assert sidecar["files"]["label"]["sha256"] == hashlib.sha256(withLabel.files["label"].read_bytes()).hexdigest()
    moved = lpsToRas(lps)
    moved[:3, 3] += 5.0  # e.g. a transform hardened into the volume after loading
    shifted = addVolume(app.scene, hu, moved, name="moved")
    with pytest.raises(UserFacingError, match="not on the grid"):
        exportResults(tmp_path, DICOM_FORMAT, shifted, createProtectedVolume(shifted, protectedArray), report,
                      dicomFiles=files)
