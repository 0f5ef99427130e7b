"""The report's visibility block and the preview, against an independent computation with numpy by hand.

Real data: the embedded sample study, another slab of the MNI152 template, and a synthetic CT in HU.
"""

import json

import numpy as np
import pytest
import SimpleITK as sitk
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from UMedProtectLib import ProtectSettings, protect
from UMedProtectLib.budget import GREY_LEVEL, standard_windows
from UMedProtectLib.cli.main import main
from UMedProtectLib.evaluation.metrics import perturbation_stats
from UMedProtectLib.evaluation.table import VISIBLE_HEADER, main_table, sweep_table
from UMedProtectLib.files.image_io import read_image
from UMedProtectLib.files.preview import BAR_HEIGHT, BAR_STRIP, CAPTION_HEIGHT, OUTLINE, difference_caption
from UMedProtectLib.method.measures.budget_strength import MEAN_SHIFT_LIMIT, mean_shift_warnings

from conftest import sitk_image


def hand_ssim(x: np.ndarray, y: np.ndarray, side: int = 7) -> float:
    """Wang et al.'s SSIM with a 7x7 uniform window, sample covariances, K1 0.01, K2 0.03, data range 1."""
    a, b = sliding_window_view(x, (side, side)), sliding_window_view(y, (side, side))
    n = side * side
    mean_a, mean_b = a.mean(axis=(-2, -1)), b.mean(axis=(-2, -1))
    var_a, var_b = a.var(axis=(-2, -1)) * n / (n - 1), b.var(axis=(-2, -1)) * n / (n - 1)
    cov = ((a - mean_a[..., None, None]) * (b - mean_b[..., None, None])).mean(axis=(-2, -1)) * n / (n - 1)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    value = ((2 * mean_a * mean_b + c1) * (2 * cov + c2)) / ((mean_a ** 2 + mean_b ** 2 + c1) * (var_a + var_b + c2))
    return float(value.mean())


def hand_visibility(original: np.ndarray, protected: np.ndarray, roi: np.ndarray, low: float, width: float) -> dict:
    """What a display of the window [low, low + width] shows, computed directly."""
    a = np.clip((original.astype(np.float64) - low) / width, 0, 1)
    b = np.clip((protected.astype(np.float64) - low) / width, 0, 1)
    change = np.abs(b - a)
    return {"psnr_db": 10 * np.log10(1 / np.mean(change ** 2)),
            "ssim": np.mean([hand_ssim(a[z], b[z]) for z in range(len(a))]),
            "max_change_of_window": change.max(),
            "p99_change_of_window": np.percentile(change[roi], 99),
            "roi_visible_fraction": np.mean(change[roi] * 255 > 1)}


def assert_matches(seen: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert seen[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def synthetic_ct(shape=(6, 64, 64)):
    """A CT-like volume in HU: air, a soft-tissue body with a skull-like bone ring, and a 70 HU lesion."""
    rng = np.random.default_rng(4)
    z, y, x = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    radius = np.hypot(y - 32, x - 32)
    image = np.where(radius < 28, 40.0, -1000.0) + np.where((radius > 24) & (radius < 28), 800.0, 0.0)
    lesion = (np.hypot(y - 30, (x - 36) / 1.4) < 7) & (z >= 1) & (z <= 4)
    image = image + 30.0 * lesion + rng.normal(0, 8, shape)
    return np.round(image).astype(np.int16), lesion.astype(np.uint8)


@pytest.mark.parametrize("epsilon, unit, window, native, window_low, window_width", [
    (10.0, "HU", "soft-tissue", 10.0, -160.0, 400.0),
    (4 / 255, "fraction", "soft-tissue", 4 / 255 * 400, -160.0, 400.0),
    (2 / 255, "fraction", "-600,1500", 2 / 255 * 1500, -1350.0, 1500.0),
    (4 / 255, "fraction", None, None, None, None),  # the robust range: native and window from the percentiles
])
def test_ct_budget_and_visibility_in_hu(epsilon, unit, window, native, window_low, window_width):
    image, label = synthetic_ct()
    low, high = np.percentile(image, (0.5, 99.5))
    if window is None:
        native, window_low, window_width = epsilon * (high - low), low, high - low
    settings = ProtectSettings(epsilon=epsilon, epsilon_unit=unit, window=window, iterations=0, device="cpu")
    result = protect(image, label, settings=settings)
    report = result.report
    assert report["epsilon_native"] == pytest.approx(native)
    assert report["epsilon"] == pytest.approx(native / (high - low))
    assert 0 < np.abs(result.protected.astype(float) - image).max() <= native
    seen = report["visibility"]
    assert seen["window"]["low"] == pytest.approx(window_low) and seen["window"]["width"] == pytest.approx(window_width)
    assert seen["budget_of_window"] == pytest.approx(native / window_width)
    assert_matches(seen, hand_visibility(image, result.protected, label > 0, window_low, window_width))
    assert report["settings"]["epsilon"] == epsilon and report["settings"]["window"] == window


def test_a_narrow_window_on_the_mni_template_counts_only_what_it_shows():
    from UMedProtectLib.files.sample import template_study

    study = template_study(100, 104, "white_matter")
    inside = study.image[study.label > 0]
    level, width = float(np.median(inside)), 20.0  # narrower than the white matter's spread: some voxels saturate
    settings = ProtectSettings(epsilon=3.0, epsilon_unit="units", window=f"{level},{width}", iterations=0,
                               device="cpu")
    result = protect(study.image, study.label, settings=settings)
    seen = result.report["visibility"]
    expected = hand_visibility(study.image, result.protected, study.label > 0, level - width / 2, width)
    assert_matches(seen, expected)
    assert 0 < seen["roi_visible_fraction"] < 1 and seen["window"]["name"] == "given"
    raw = np.abs(result.protected.astype(float) - study.image)[study.label > 0] / width
    assert np.mean(raw * 255 > 1) > seen["roi_visible_fraction"]  # saturated voxels hide some changes


def test_sample_study_report_and_summary_state_the_window(tmp_path, capsys, sample_files):
    image_path, label_path = sample_files
    out, report_path = tmp_path / "o.nrrd", tmp_path / "r.json"
    code = main(["protect", "--image", str(image_path), "--label", str(label_path), "--output", str(out),
                 "--report", str(report_path), "--iterations", "0", "--progress", "none"])
    stdout = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    original, protected = read_image(image_path).array, read_image(out).array
    label = read_image(label_path).array
    low, high = report["intensity_range"]
    assert report["visibility"]["window"]["name"] == "robust range"
    assert_matches(report["visibility"], hand_visibility(original, protected, label > 0, low, high - low))
    assert "in the robust range window" in stdout and "change by more than one grey level" in stdout


def test_preview_shows_both_images_in_the_window_and_the_difference_at_the_budget(tmp_path, capsys):
    image, label = synthetic_ct()
    geometry = {"spacing": (0.7, 0.7, 2.0), "direction": (1, 0, 0, 0, 1, 0, 0, 0, 1)}
    sitk.WriteImage(sitk_image(image, **geometry), str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(sitk_image(label, **geometry), str(tmp_path / "lesion.nrrd"))
    code = main(["protect", "--image", str(tmp_path / "ct.nrrd"), "--label", str(tmp_path / "lesion.nrrd"),
                 "--output", str(tmp_path / "o.nrrd"), "--preview", str(tmp_path / "p.png"), "--epsilon", "10HU",
                 "--window", "soft-tissue", "--iterations", "0", "--progress", "none"])
    assert code == 0, capsys.readouterr().err
    protected = read_image(tmp_path / "o.nrrd").array
    sheet = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(int)
    z = 3  # the preview shows the middle one of the lesion's slices 1, 2, 3, 4
    scale, gap = 5, 8  # 64 columns shown 320 wide; identity direction: no flips
    for panel, volume in enumerate((image, protected)):
        grey = np.round(np.clip((volume[z].astype(float) + 160) / 400, 0, 1) * 255)
        left = gap + panel * (320 + gap)
        shown = sheet[CAPTION_HEIGHT + 2:CAPTION_HEIGHT + 64 * scale:scale, left + 2:left + 320:scale, 0]
        np.testing.assert_array_equal(shown, grey)
    left = gap + 2 * (320 + gap)
    shown = sheet[CAPTION_HEIGHT + 2:CAPTION_HEIGHT + 64 * scale:scale, left + 2:left + 320:scale]
    change = protected[z].astype(float) - image[z]
    fade = np.round(255 * (1 - np.abs(change) / 10))  # +-10 HU, the budget, is full red or blue
    np.testing.assert_array_equal(shown[..., 1], fade)
    assert (shown[change > 0][:, 0] == 255).all() and (shown[change < 0][:, 2] == 255).all()
    # The ROI's outline on the original: every outline pixel lies on a lesion voxel next to one outside it.
    original = sheet[CAPTION_HEIGHT:CAPTION_HEIGHT + 64 * scale, gap:gap + 320]
    rows, columns = np.nonzero((original == OUTLINE).all(axis=-1))
    inside = label[z] > 0
    assert rows.size > 0 and inside[rows // scale, columns // scale].all()
    outside = [not inside[min(max(r + dr, 0), 319) // scale, min(max(c + dc, 0), 319) // scale]
               for r, c in zip(rows, columns) for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    assert np.reshape(outside, (-1, 4)).any(axis=1).all()
    # The colour bar under the difference: blue at -budget, white at 0, red at +budget.
    bar = sheet[CAPTION_HEIGHT + 64 * scale + 4 + BAR_HEIGHT // 2, left:left + 320]
    assert tuple(bar[0]) == (0, 0, 255) and tuple(bar[-1]) == (255, 0, 0) and (bar[160] >= 250).all()
    assert difference_caption(10.0, 10.0 / 400, "HU") == ("Difference shown x40, ROI outlined",
                                                          "(the budget 10 HU, 2.5% of the window, at full colour)")
    # The second row: the protected slice in each further standard window that shows the lesion (median 70 HU).
    top = CAPTION_HEIGHT + 64 * scale + BAR_STRIP + gap + CAPTION_HEIGHT
    for panel, (low, width) in enumerate(((0.0, 80.0), (-1350.0, 1500.0), (-500.0, 1800.0))):  # brain, lung, bone
        grey = np.round(np.clip((protected[z].astype(float) - low) / width, 0, 1) * 255)
        left = gap + panel * (320 + gap)
        np.testing.assert_array_equal(sheet[top + 2:top + 64 * scale:scale, left + 2:left + 320:scale, 0], grey)
    assert sheet.shape[0] == top + 64 * scale + gap and sheet.shape[1] == 3 * (320 + gap) + gap


def test_evaluation_reports_the_same_windowed_figures():
    from UMedProtectLib.files.sample import template_study

    study = template_study(60, 64, "csf")
    low, high = np.percentile(study.image, (0.5, 99.5))
    original = np.clip((study.image - low) / (high - low), 0, 1).astype(np.float32)
    rng = np.random.default_rng(0)
    perturbed = np.clip(original + rng.uniform(-8 / 255, 8 / 255, original.shape) * (study.label > 0), 0, 1)
    stats = perturbation_stats(original, perturbed.astype(np.float32), study.label)
    expected = hand_visibility(original, perturbed, study.label > 0, 0.0, 1.0)
    for key, hand in (("window_psnr_db", "psnr_db"), ("window_ssim", "ssim"),
                      ("window_max_change", "max_change_of_window"), ("window_p99_change", "p99_change_of_window"),
                      ("roi_visible_fraction", "roi_visible_fraction")):
        assert stats[key] == pytest.approx(expected[hand], rel=1e-5, abs=1e-7), key
    assert 0.5 < stats["roi_visible_fraction"] < 1
    # The tables give that share next to PSNR on the robust range.
    entry = {"method": "gaussian", "epsilon": 8 / 255, "epsilon_255": 8.0, "mean_dice": 0.9, "best_dice": 0.91,
             "victims": {"unet": {"mean": 0.9, "best": 0.91}}, "stats": stats}
    result = {"summary": {"train_slices": 4, "test_slices": 2}, "clean": {"unet": {"mean": 0.95, "best": 0.96}},
              "clean_mean_dice": 0.95, "clean_best_dice": 0.96, "methods": [entry]}
    for table in (main_table("mni-csf", result, 8 / 255, ["unet"]), sweep_table("mni-csf", result)):
        header, _, *rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]
        column = header.index(VISIBLE_HEADER)
        assert header[column + 1] == "PSNR dB"
        assert rows[-1][column] == f"{100 * stats['roi_visible_fraction']:.1f}"
        assert rows[-1][column + 1] == f"{stats['psnr_db']:.1f}"


def _within_a_grey_level(report: dict, image: np.ndarray, protected: np.ndarray, roi: np.ndarray) -> dict:
    """Check each standard window's figures by hand; return window name -> largest change in grey levels."""
    seen = {entry["window"]["name"]: entry for entry in report["standard_windows"]}
    assert sorted(seen) == sorted(w.name for w in standard_windows())
    levels = {}
    for window in standard_windows():
        assert_matches(seen[window.name], hand_visibility(image, protected, roi, window.low, window.width))
        levels[window.name] = seen[window.name]["max_change_of_window"] / GREY_LEVEL
    return levels


def test_the_default_budget_of_a_ct_is_within_one_grey_level_in_every_standard_window():
    image, label = synthetic_ct()
    image = image.astype(np.float32)  # no integer step: the default is exactly one grey level of the brain window
    result = protect(image, label, settings=ProtectSettings(iterations=3, device="cpu"))
    report = result.report
    assert {k: v for k, v in report["reading"].items() if k != "reason"} == {
        "ct_in_hu": True, "rule": "air", "roi_median": float(np.median(image[label > 0])), "step": 0.0,
        "covering_windows": ["brain", "soft-tissue", "lung", "bone"]}
    assert report["epsilon_native"] == pytest.approx(80 / 255) and report["visibility"]["window"]["name"] == "brain"
    assert report["epsilon_given"] == "the default for a CT in HU: one grey level of the brain window (L40 W80)"
    levels = _within_a_grey_level(report, image, result.protected, label > 0)
    assert 0 < max(levels.values()) <= 1 + 1e-6 and levels["brain"] == max(levels.values())
    assert not [w for w in report["warnings"] if "grey levels of an 8-bit display" in w]


def test_an_explicit_budget_is_kept_and_each_window_that_shows_it_is_named(tmp_path, capsys):
    image, label = synthetic_ct()
    sitk.WriteImage(sitk_image(image), str(tmp_path / "ct.nrrd"))
    sitk.WriteImage(sitk_image(label), str(tmp_path / "lesion.nrrd"))
    code = main(["protect", "--image", str(tmp_path / "ct.nrrd"), "--label", str(tmp_path / "lesion.nrrd"),
                 "--output", str(tmp_path / "o.nrrd"), "--report", str(tmp_path / "r.json"), "--epsilon", "6HU",
                 "--iterations", "2", "--progress", "none"])
    stdout = capsys.readouterr().out
    assert code == 0
    report = json.loads((tmp_path / "r.json").read_text())
    protected = read_image(tmp_path / "o.nrrd").array
    assert report["epsilon_native"] == 6.0
    levels = _within_a_grey_level(report, image, protected, label > 0)
    visible = {name for name, value in levels.items() if value > 1 + 1e-9}
    assert {"brain", "soft-tissue"} <= visible  # up to 5 HU after truncation: 16 grey levels of W80, 3.2 of W400
    named = {w.split(" window (")[0][len("in the "):] for w in report["warnings"] if "grey levels of an 8-bit" in w}
    assert named == visible
    brain = next(w for w in report["warnings"] if w.startswith("in the brain window (L40 W80)"))
    assert brain.endswith("this integer image cannot change by less than 1 HU, 3.19 grey levels there")
    for warning in report["warnings"]:
        assert f"warning: {warning}" in stdout
    assert "standard CT windows (ROI median 70 HU), largest change in grey levels" in stdout


def test_the_mean_change_inside_the_roi_is_reported_and_warned_above_the_limit(sample_files):
    image, label = (read_image(path).array for path in sample_files)
    result = protect(image, label, settings=ProtectSettings(iterations=2, device="cpu"))
    shift, roi = result.report["mean_shift"], label > 0
    change = result.protected.astype(np.float64)[roi] - image[roi]
    budget, width = result.report["epsilon_native"], result.report["visibility"]["window"]["width"]
    assert shift["native"] == pytest.approx(change.mean())
    assert shift["of_budget"] == pytest.approx(change.mean() / budget)
    assert shift["grey_levels"] == pytest.approx(change.mean() / width * 255)
    assert shift["down_fraction"] == pytest.approx(np.mean(change < 0)) and shift["up_fraction"] == pytest.approx(
        np.mean(change > 0))
    warned = [w for w in result.report["warnings"] if "on average" in w]
    assert bool(warned) == (abs(shift["of_budget"]) > MEAN_SHIFT_LIMIT)
    darker = {"native": -0.33, "of_budget": -0.22, "grey_levels": -1.04, "window": "brain", "down_fraction": 0.4,
              "up_fraction": 0.07}
    assert mean_shift_warnings(darker, "published") == [
        "the published design made the ROI darker on average: its mean moved by -0.33 native units (-0.22 of the "
        "budget, -1.04 grey levels of the brain window; 40% of ROI voxels went down, 7% up), above 0.1 of the budget: "
        "a measurement of the ROI's mean sees it (docs/visibility.md)"]
    assert mean_shift_warnings({**darker, "native": 0.1, "of_budget": 0.07}, "published") == []
