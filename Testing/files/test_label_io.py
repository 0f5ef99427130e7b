"""Label maps onto the image grid: plain volumes, Slicer .seg.nrrd, cropped, resampled and refused labels."""

import numpy as np
import pytest
import SimpleITK as sitk
import slicerio

from UMedProtectLib.errors import InputError
from UMedProtectLib.files.image_io import from_sitk
from UMedProtectLib.files.label_io import read_label

from conftest import blob_study, sitk_image

SPACING, ORIGIN = (0.8, 0.9, 2.5), (-12.5, 30.0, 7.25)


@pytest.fixture
def study():
    """Reference image (ImageData, oblique geometry) and its label array."""
    image, label = blob_study()
    return from_sitk(sitk_image(image, SPACING, ORIGIN)), label


def ijk_to_lps(image: sitk.Image) -> np.ndarray:
    """The 4x4 voxel-to-LPS matrix of an image."""
    matrix = np.eye(4)
    matrix[:3, :3] = np.reshape(image.GetDirection(), (3, 3)) * np.asarray(image.GetSpacing())
    matrix[:3, 3] = image.GetOrigin()
    return matrix


def test_plain_label_on_the_same_grid(tmp_path, study):
    reference, label = study
    for name in ("l.nrrd", "l.nii.gz", "l.mhd"):
        sitk.WriteImage(sitk_image(label, SPACING, ORIGIN), str(tmp_path / name))
        result = read_label(tmp_path / name, reference)
        np.testing.assert_array_equal(result.array, label)
        assert result.warnings == []


def test_float_label_with_integer_values_is_accepted_and_fractions_refused(tmp_path, study):
    reference, label = study
    sitk.WriteImage(sitk_image(label.astype(np.float32), SPACING, ORIGIN), str(tmp_path / "f.nii"))
    np.testing.assert_array_equal(read_label(tmp_path / "f.nii", reference).array, label)
    sitk.WriteImage(sitk_image(label * 0.5, SPACING, ORIGIN), str(tmp_path / "p.nii"))
    with pytest.raises(InputError, match="non-integer"):
        read_label(tmp_path / "p.nii", reference)


def test_segmentation_with_overlapping_layers(tmp_path, study):
    reference, label = study
    segmentation = slicerio.create_segmentation(label.shape[::-1], ijk_to_lps(reference.image))
    lesion, second = (label == 1).transpose(2, 1, 0), (label == 2).transpose(2, 1, 0)
    overlap = np.zeros_like(lesion)
    overlap[20:26, 18:22, 2:4] = True  # inside the lesion: forces a second layer
    slicerio.add_segment(segmentation, lesion, {"id": "lesion", "name": "lesion"})
    slicerio.add_segment(segmentation, second, {"id": "second", "name": "second"})
    slicerio.add_segment(segmentation, overlap, {"id": "core", "name": "core"})
    assert segmentation["voxels"].ndim == 4
    slicerio.write_segmentation(str(tmp_path / "s.seg.nrrd"), segmentation)
    result = read_label(tmp_path / "s.seg.nrrd", reference)
    # Layer 0 holds values 1 and 2, layer 1 value 1 again: the three segments are renumbered 1, 2, 3.
    expected = label.copy()
    expected[overlap.transpose(2, 1, 0)] = 3
    np.testing.assert_array_equal(result.array, expected)
    assert result.names == {1: "lesion", 2: "second", 3: "core"}
    assert any("numbered" in w for w in result.warnings)
    assert any(f"{int(overlap.sum())} voxels belong to several segments" in w for w in result.warnings)


def test_segmentation_label_values_are_kept_when_unique(tmp_path, study):
    reference, label = study
    segmentation = slicerio.create_segmentation(label.shape[::-1], ijk_to_lps(reference.image))
    slicerio.add_segment(segmentation, (label == 1).transpose(2, 1, 0), {"id": "a", "name": "tumour"})
    slicerio.add_segment(segmentation, (label == 2).transpose(2, 1, 0), {"id": "b", "name": "node"})
    segmentation["voxels"][segmentation["voxels"] == 2] = 7
    segmentation["segments"][1]["labelValue"] = 7
    slicerio.write_segmentation(str(tmp_path / "s.seg.nrrd"), segmentation)
    result = read_label(tmp_path / "s.seg.nrrd", reference)
    np.testing.assert_array_equal(result.array, np.where(label == 2, 7, label))
    assert result.names == {1: "tumour", 7: "node"} and result.warnings == []


def test_segmentation_cropped_to_its_extent_is_padded(tmp_path, study):
    reference, label = study
    crop = (slice(1, 5), slice(10, 30), slice(12, 36))  # (z, y, x) block holding the lesion
    block = sitk_image(label[crop], SPACING, ORIGIN)
    block.SetOrigin(reference.image.TransformIndexToPhysicalPoint((12, 10, 1)))
    segmentation = slicerio.create_segmentation(label[crop].shape[::-1], ijk_to_lps(block))
    slicerio.add_segment(segmentation, (label[crop] == 1).transpose(2, 1, 0), {"id": "lesion"})
    slicerio.write_segmentation(str(tmp_path / "c.seg.nrrd"), segmentation)
    result = read_label(tmp_path / "c.seg.nrrd", reference)
    np.testing.assert_array_equal(result.array, (label == 1).astype(np.uint8))
    assert any("padded" in w for w in result.warnings)


def test_label_on_a_coarser_grid_covering_the_image_is_resampled(tmp_path, study):
    reference, _ = study
    # A label at twice the in-plane spacing over the same region: values follow a physical rule we can check.
    coarse_shape = (6, 20, 24)
    coarse = sitk_image(np.zeros(coarse_shape, np.uint8), (1.6, 1.8, 2.5), ORIGIN)
    coarse.SetOrigin(reference.image.TransformContinuousIndexToPhysicalPoint((0.5, 0.5, 0.0)))
    zz, yy, xx = np.meshgrid(*[np.arange(n) for n in coarse_shape], indexing="ij")
    values = ((xx // 4 + yy // 5 + zz) % 3).astype(np.uint8)
    coarse = sitk_image(values, (1.6, 1.8, 2.5), coarse.GetOrigin())
    sitk.WriteImage(coarse, str(tmp_path / "coarse.nii.gz"))
    result = read_label(tmp_path / "coarse.nii.gz", reference)
    assert result.array.shape == reference.array.shape
    assert any("resampled" in w and "nearest neighbour" in w for w in result.warnings)
    # Independent check: look each image voxel centre up in the coarse label by rounding its continuous index.
    for index in [(0, 0, 0), (47, 39, 5), (13, 22, 3), (30, 7, 1), (46, 1, 4)]:
        point = reference.image.TransformIndexToPhysicalPoint(index)
        i, j, k = np.floor(np.array(coarse.TransformPhysicalPointToContinuousIndex(point)) + 0.5).astype(int)
        assert result.array[index[2], index[1], index[0]] == values[k, j, i]


def test_label_of_another_region_is_refused(tmp_path, study):
    reference, label = study
    shifted = sitk_image(label, SPACING, (ORIGIN[0] + 20.0, ORIGIN[1], ORIGIN[2]))
    sitk.WriteImage(shifted, str(tmp_path / "shifted.nrrd"))
    with pytest.raises(InputError, match="does not cover the image") as caught:
        read_label(tmp_path / "shifted.nrrd", reference)
    assert "\n" not in str(caught.value)
    smaller = sitk_image(label[:, :, :30], SPACING, ORIGIN, direction=np.eye(3).ravel())
    sitk.WriteImage(smaller, str(tmp_path / "rotated.nrrd"))
    with pytest.raises(InputError, match="does not cover the image"):
        read_label(tmp_path / "rotated.nrrd", reference)


def test_bad_label_files(tmp_path, study):
    reference, _ = study
    with pytest.raises(InputError, match="does not exist"):
        read_label(tmp_path / "none.seg.nrrd", reference)
    (tmp_path / "bad.seg.nrrd").write_text("NRRD0004\nnonsense\n")
    with pytest.raises(InputError, match="not a readable Slicer segmentation"):
        read_label(tmp_path / "bad.seg.nrrd", reference)
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((6, 40, 48, 3), np.uint8), isVector=True), str(tmp_path / "v.nrrd"))
    with pytest.raises(InputError, match="vector"):
        read_label(tmp_path / "v.nrrd", reference)


def test_two_dimensional_label_for_a_two_dimensional_image(tmp_path):
    image, label = blob_study((1, 30, 32))
    reference = from_sitk(sitk_image(image[0], (0.5, 0.5), (1.0, 2.0)))
    sitk.WriteImage(sitk_image(label[0], (0.5, 0.5), (1.0, 2.0)), str(tmp_path / "l.nrrd"))
    np.testing.assert_array_equal(read_label(tmp_path / "l.nrrd", reference).array, label)
