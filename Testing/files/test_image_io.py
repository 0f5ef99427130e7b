"""Image reading and atomic writing: geometry, dtype and metadata round trips checked by independent readers."""

import os
from pathlib import Path

import nibabel
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from UMedProtectLib.errors import InputError
from UMedProtectLib.files.formats import IMAGE_EXTENSIONS, data_files
from UMedProtectLib.files.image_io import from_sitk, read_image, write_outputs
from UMedProtectLib.files.transaction import OutputTransaction

from conftest import OBLIQUE, blob_study, sha256, sitk_image

SPACING, ORIGIN = (0.8, 0.9, 2.5), (-12.5, 30.0, 7.25)
METADATA = {"UMed_test_note": "kept across writes", "Patient_comment": "anonymised; study 7"}


def reference(dtype=np.int16) -> "object":
    """An in-memory reference image with an oblique geometry and custom metadata."""
    image, _ = blob_study(dtype=dtype)
    return from_sitk(sitk_image(image, SPACING, ORIGIN, OBLIQUE, METADATA))


def itk_affine(spacing, origin, direction) -> np.ndarray:
    """4x4 voxel (i, j, k) to LPS matrix of an ITK geometry."""
    affine = np.eye(4)
    affine[:3, :3] = np.reshape(direction, (3, 3)) * np.asarray(spacing)
    affine[:3, 3] = origin
    return affine


@pytest.mark.parametrize("extension", IMAGE_EXTENSIONS)
@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_round_trip_is_what_an_independent_reader_reads(tmp_path, extension, dtype):
    ref = reference(dtype)
    changed = (ref.array + 1).astype(dtype)
    path = tmp_path / f"out{extension}"
    write_outputs([(changed, ref, path)], overwrite=True)
    expected_affine = itk_affine(SPACING, ORIGIN, OBLIQUE)
    if extension in (".nrrd", ".nhdr"):
        data, header = nrrd.read(str(path))  # pynrrd: (x, y, z) index order, LPS space
        assert header["space"] == "left-posterior-superior"
        affine = np.eye(4)
        affine[:3, :3] = np.asarray(header["space directions"], dtype=float).T
        affine[:3, 3] = header["space origin"]
        assert header["UMed_test_note"] == METADATA["UMed_test_note"]
        assert header["Patient_comment"] == METADATA["Patient_comment"]
    elif extension in (".nii", ".nii.gz"):
        loaded = nibabel.load(str(path))  # nibabel: (x, y, z) index order, RAS affine
        data = np.asarray(loaded.dataobj)
        affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ loaded.affine
    else:
        image = sitk.ReadImage(str(path))
        data = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
        affine = itk_affine(image.GetSpacing(), image.GetOrigin(), image.GetDirection())
        assert image.GetMetaData("UMed_test_note") == METADATA["UMed_test_note"]
    assert data.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(data.transpose(2, 1, 0), changed)
    np.testing.assert_allclose(affine, expected_affine, atol=1e-5)
    # Our own reader agrees too, and lists the separate data file of split formats.
    back = read_image(path)
    np.testing.assert_array_equal(back.array, changed)
    assert back.array.dtype == np.dtype(dtype)
    assert len(back.data_files) == (1 if extension in (".mhd", ".nhdr") else 0)
    assert all(p.is_file() for p in back.data_files)
    assert sorted(os.listdir(tmp_path)) == sorted([path.name] + [p.name for p in back.data_files])


def test_nifti_description_survives_writes(tmp_path):
    ref = reference()
    ref.metadata["ITK_FileNotes"] = "UMed test description"  # ITK's name for the NIfTI descrip field
    write_outputs([(ref.array, ref, tmp_path / "a.nii.gz")], overwrite=True)
    assert bytes(nibabel.load(str(tmp_path / "a.nii.gz")).header["descrip"]).rstrip(b"\0") == b"UMed test description"
    # Reading a written file and writing it again keeps it.
    again = read_image(tmp_path / "a.nii.gz")
    write_outputs([(again.array, again, tmp_path / "b.nii.gz")], overwrite=True)
    assert read_image(tmp_path / "b.nii.gz").metadata["descrip"] == "UMed test description"


def test_two_dimensional_image_is_one_slice_and_written_back_2d(tmp_path):
    plane = np.arange(30 * 20, dtype=np.int16).reshape(30, 20)
    sitk.WriteImage(sitk_image(plane, (0.5, 0.25), (3.0, -4.0)), str(tmp_path / "plane.nrrd"))
    image = read_image(tmp_path / "plane.nrrd")
    assert image.array.shape == (1, 30, 20)
    assert image.spacing_xyz == (0.5, 0.25, 1.0)
    write_outputs([(image.array * 2, image, tmp_path / "out.nrrd")], overwrite=True)
    data, header = nrrd.read(str(tmp_path / "out.nrrd"))
    assert header["dimension"] == 2
    np.testing.assert_array_equal(data.T, plane * 2)
    np.testing.assert_allclose(header["space origin"], (3.0, -4.0))


def test_real_sample_geometry_matches_pynrrd(sample_files):
    image = read_image(sample_files[0])
    data, header = nrrd.read(str(sample_files[0]))
    np.testing.assert_array_equal(image.array, data.transpose(2, 1, 0))
    np.testing.assert_allclose(np.asarray(header["space directions"]).T,
                               np.reshape(image.direction, (3, 3)) * np.asarray(image.spacing))
    np.testing.assert_allclose(header["space origin"], image.origin)
    assert image.array.dtype == np.int16 and image.array.shape[0] == 20


def written(path: Path, content: bytes) -> Path:
    """Create a file with some content and return its path."""
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent.nrrd", "does not exist"),
    (lambda d: (d / "folder.nrrd").mkdir() or d / "folder.nrrd", "is a folder"),
    (lambda d: written(d / "a.png", b"\x89PNG"), "unsupported file type"),
    (lambda d: written(d / "bad.nrrd", b"NRRD0004\ntype: what\n"), "could not be read"),
    (lambda d: written(d / "bad.nii.gz", b"not gzip at all"), "could not be read"),
    (lambda d: written(d / "empty.mha", b""), "could not be read"),
])
def test_unreadable_inputs_give_one_line_errors(tmp_path, make, message):
    with pytest.raises(InputError, match=message) as caught:
        read_image(make(tmp_path))
    assert "\n" not in str(caught.value)


def test_header_without_its_data_file_is_refused(tmp_path):
    write_outputs([(reference().array, reference(), tmp_path / "split.mhd")], overwrite=True)
    (data,) = data_files(tmp_path / "split.mhd")
    data.unlink()
    with pytest.raises(InputError, match="names data file"):
        read_image(tmp_path / "split.mhd")


def test_four_d_vector_and_nan_images_are_refused(tmp_path):
    volume = sitk.GetImageFromArray(np.zeros((4, 5, 6), np.int16))
    sitk.WriteImage(sitk.JoinSeries([volume, volume, volume]), str(tmp_path / "t.nrrd"))
    with pytest.raises(InputError, match="4D"):
        read_image(tmp_path / "t.nrrd")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6, 3), np.uint8), isVector=True), str(tmp_path / "v.mha"))
    with pytest.raises(InputError, match="vector or colour"):
        read_image(tmp_path / "v.mha")
    values = np.ones((3, 4, 5), np.float32)
    values[1, 2, 3] = np.nan
    values[0, 0, 0] = np.inf
    for name in ("n.nii", "n.nii.gz", "n.nrrd", "n.mha"):
        sitk.WriteImage(sitk.GetImageFromArray(values), str(tmp_path / name))
        with pytest.raises(InputError, match="2 NaN or infinite"):
            read_image(tmp_path / name)
    # Big-endian NIfTI written by nibabel: the raw check must honour the byte order.
    big = nibabel.Nifti1Image(values.transpose(2, 1, 0).astype(">f8"), np.eye(4))
    nibabel.save(big, str(tmp_path / "big.nii"))
    with pytest.raises(InputError, match="2 NaN or infinite"):
        read_image(tmp_path / "big.nii")


def test_single_time_point_4d_nifti_reads_as_3d(tmp_path):
    volume = np.arange(4 * 5 * 6, dtype=np.int16).reshape(6, 5, 4, 1)  # nibabel order (x, y, z, t)
    nibabel.save(nibabel.Nifti1Image(volume, np.eye(4)), str(tmp_path / "t1.nii"))
    np.testing.assert_array_equal(read_image(tmp_path / "t1.nii").array, volume[..., 0].transpose(2, 1, 0))


def test_failed_multi_output_write_leaves_nothing(tmp_path):
    ref = reference()
    with pytest.raises(ValueError, match="shape"):
        write_outputs([(ref.array, ref, tmp_path / "a.nrrd"), (ref.array[:2], ref, tmp_path / "b.mhd")],
                      {tmp_path / "r.json": b"{}"})
    assert os.listdir(tmp_path) == []


def test_existing_output_needs_overwrite_and_inputs_are_never_replaced(tmp_path):
    ref = reference()
    (tmp_path / "a.nrrd").write_bytes(b"old")
    with pytest.raises(InputError, match="already exists"):
        write_outputs([(ref.array, ref, tmp_path / "a.nrrd")])
    assert (tmp_path / "a.nrrd").read_bytes() == b"old"
    with pytest.raises(InputError, match="is an input file"):
        write_outputs([(ref.array, ref, tmp_path / "a.nrrd")], overwrite=True, keep_intact=[tmp_path / "a.nrrd"])
    write_outputs([(ref.array, ref, tmp_path / "a.nrrd")], overwrite=True)
    np.testing.assert_array_equal(read_image(tmp_path / "a.nrrd").array, ref.array)
    assert sorted(os.listdir(tmp_path)) == ["a.nrrd"]


def test_data_file_of_an_output_may_not_replace_an_input(tmp_path):
    ref = reference()
    write_outputs([(ref.array, ref, tmp_path / "input.mhd")], overwrite=True)
    (data,) = data_files(tmp_path / "input.mhd")
    before = sha256(data)
    # "input.nhdr" would write its data as input.raw.gz; "input.mhd" is taken, so aim an .mhd at the same data name.
    with pytest.raises(InputError, match="is an input file"):
        write_outputs([(ref.array + 1, ref, tmp_path / "other" / ".." / "input.mhd")], overwrite=True,
                      keep_intact=[data])
    assert sha256(data) == before
    assert sorted(os.listdir(tmp_path)) == ["input.mhd", data.name]


def test_commit_failure_rolls_back_earlier_moves(tmp_path):
    (tmp_path / "first.json").write_text("previous")
    transaction = OutputTransaction(overwrite=True)
    transaction.stage(tmp_path / "first.json").write_text("new")
    transaction.stage(tmp_path / "second.json").write_text("new")
    # A folder appearing at the second destination after staging makes its rename fail for real.
    (tmp_path / "second.json").mkdir()
    (tmp_path / "second.json" / "keep").write_text("x")
    with pytest.raises(OSError):
        transaction.commit()
    assert (tmp_path / "first.json").read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["first.json", "second.json"]
    assert os.listdir(tmp_path / "second.json") == ["keep"]
