"""Dataset layouts for fit-profile, and the preview picture's layout and orientation."""

import numpy as np
import pytest

from UMedProtectLib.dataset.layouts import find_pairs
from UMedProtectLib.errors import InputError
from UMedProtectLib.files.preview import (BAR_HEIGHT, BAR_STRIP, CAPTION_HEIGHT, OUTLINE, bar_labels,
                                          difference_caption, middle_roi_slice, render_preview, texture_lines)


def touch(folder, *names):
    """Create empty files (pairing looks at names only)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def test_suffix_convention_pairs_and_ignores_the_rest(tmp_path):
    touch(tmp_path, "a.nrrd", "a_label.nrrd", "b.nii.gz", "b_seg.nii.gz", "c.mha", "c.seg.nrrd", "d.nrrd",
          "notes.txt", ".hidden.nrrd", ".hidden_label.nrrd")
    pairs = [(image.name, label.name) for image, label in find_pairs(tmp_path)]
    assert pairs == [("a.nrrd", "a_label.nrrd"), ("b.nii.gz", "b_seg.nii.gz"), ("c.mha", "c.seg.nrrd")]


def test_images_and_labels_subfolders(tmp_path):
    touch(tmp_path / "images", "case1.nii.gz", "case2.nrrd", "case3.nrrd")
    touch(tmp_path / "labels", "case1.nrrd", "case2.seg.nrrd")
    pairs = [(image.name, label.name) for image, label in find_pairs(tmp_path)]
    assert pairs == [("case1.nii.gz", "case1.nrrd"), ("case2.nrrd", "case2.seg.nrrd")]


def test_csv_relative_and_absolute_paths(tmp_path):
    touch(tmp_path / "x", "i.nrrd", "l.nrrd")
    (tmp_path / "list.csv").write_text(f"Image, Label ,site\nx/i.nrrd,{tmp_path / 'x' / 'l.nrrd'},A\n")
    assert find_pairs(tmp_path / "list.csv") == [(tmp_path / "x" / "i.nrrd", tmp_path / "x" / "l.nrrd")]


@pytest.mark.parametrize("content, message", [
    ("path,mask\na,b\n", "columns image,label"),
    ("image,label\nx/i.nrrd,\n", "row 2"),
    ("image,label\nx/i.nrrd,x/none.nrrd\n", "does not exist"),
])
def test_bad_csv(tmp_path, content, message):
    touch(tmp_path / "x", "i.nrrd")
    (tmp_path / "list.csv").write_text(content)
    with pytest.raises(InputError, match=message):
        find_pairs(tmp_path / "list.csv")


def test_nothing_matches_says_what_was_found(tmp_path):
    touch(tmp_path, "scan.nrrd", "mask_of_scan.nrrd")
    with pytest.raises(InputError, match="found: mask_of_scan.nrrd, scan.nrrd.*_label"):
        find_pairs(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        find_pairs(tmp_path / "absent")


def test_preview_panels_orientation_and_colours():
    original = np.zeros((5, 20, 30), np.int16)
    original[:, :10, :15] = 100  # a marker in the first rows and columns of the stored grid
    roi = np.zeros(original.shape, bool)
    roi[1:4, 5:15, 5:25] = True
    protected = original.copy()
    protected[2, 12, 20] += 4  # +epsilon: full red
    protected[2, 13, 20] -= 4  # -epsilon: full blue
    assert middle_roi_slice(roi) == 2
    # LPS direction diag(-1, -1, 1): stored columns run to the patient's right and rows anterior, so the
    # radiological display flips both, moving the marker to the bottom-right corner.
    sheet = np.asarray(render_preview(original, protected, roi, 4.0, (0, 100), (1.0, 2.0, 3.0),
                                      (-1, 0, 0, 0, -1, 0, 0, 0, 1)))
    # Panels 320 wide (30 columns x 10.67); 20 rows x 10.67 x 2 for the 2:1 voxel aspect = 427 high; the colour
    # bar's strip under the row.
    assert sheet.shape[:2] == (427 + CAPTION_HEIGHT + 8 + BAR_STRIP, 3 * 320 + 4 * 8)
    first = sheet[CAPTION_HEIGHT:CAPTION_HEIGHT + 427, 8:328]
    assert (first[-5, -5] == 255).all() and (first[5, 5] == 0).all()
    third = sheet[CAPTION_HEIGHT:CAPTION_HEIGHT + 427, 8 + 2 * 328:8 + 2 * 328 + 320]
    colours = {tuple(c) for c in third.reshape(-1, 3)}
    assert (255, 0, 0) in colours and (0, 0, 255) in colours and (255, 255, 255) in colours
    # The ROI is outlined on the difference where it is on the original, so a change can be placed on the anatomy.
    np.testing.assert_array_equal((third == OUTLINE).all(axis=-1), (first == OUTLINE).all(axis=-1))
    assert (third == OUTLINE).all(axis=-1).sum() > 2 * 320
    # The texture is written over the protected slice: its caption strip differs from the plain one.
    with_texture = np.asarray(render_preview(original, protected, roi, 4.0, (0, 100), (1.0, 2.0, 3.0),
                                             (-1, 0, 0, 0, -1, 0, 0, 0, 1),
                                             texture={"roi_texture_ratio": 0.43, "band_texture_ratio": 1.11}))
    assert (with_texture[:CAPTION_HEIGHT, 336:656] != sheet[:CAPTION_HEIGHT, 336:656]).any()
    assert (with_texture[CAPTION_HEIGHT:] == sheet[CAPTION_HEIGHT:]).all()
    # The unit (HU for a CT in HU) is written under the colour bar and in the difference's caption; the panels and
    # the bar itself stay as they were.
    in_hu = np.asarray(render_preview(original, protected, roi, 4.0, (0, 100), (1.0, 2.0, 3.0),
                                      (-1, 0, 0, 0, -1, 0, 0, 0, 1), unit="HU"))
    under_bar = CAPTION_HEIGHT + 427 + 4 + BAR_HEIGHT
    assert (in_hu[under_bar:] != sheet[under_bar:]).any() and (in_hu[:CAPTION_HEIGHT] != sheet[:CAPTION_HEIGHT]).any()
    assert (in_hu[CAPTION_HEIGHT:under_bar] == sheet[CAPTION_HEIGHT:under_bar]).all()


def test_the_preview_says_in_words_how_the_texture_changed_and_the_bar_its_unit():
    assert texture_lines({"roi_texture_ratio": 0.433, "band_texture_ratio": 1.111}) == (
        "ROI looks smoother than the original: noise x0.43", "edge band texture close to the original: noise x1.11")
    assert texture_lines({"roi_texture_ratio": 1.3, "band_texture_ratio": float("nan")}) == (
        "ROI looks rougher than the original: noise x1.30",)
    assert texture_lines(None) == ()
    assert bar_labels(7.06, "HU") == ("-7.06 HU", "0", "+7.06 HU")
    assert difference_caption(3.67, 3.67 / 234, "units") == (
        "Difference shown x64, ROI outlined", "(the budget 3.67 units, 1.6% of the window, at full colour)")
