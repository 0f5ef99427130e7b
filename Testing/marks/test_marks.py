"""Keys, marks, the audit's test and its command line: keygen, protect --mark, audit prepare / verdict."""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage, stats

from UMedProtectLib.cli.main import main
from UMedProtectLib.marks import MARKS
from UMedProtectLib.marks.embed import faded, mark_change, outer_band, roi_response, study_offset
from UMedProtectLib.marks.key import OwnerKey, read_key, write_key
from UMedProtectLib.marks.probes import mark_seeds
from UMedProtectLib.marks.statistics import mark_test

from conftest import sha256

KEY = OwnerKey(bytes(range(32)))
OTHER = OwnerKey(bytes(range(1, 33)))


def run(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err):
    return code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("umed-protect: error: ")


def key_file(tmp_path: Path, key: OwnerKey = KEY, name: str = "owner.key") -> Path:
    path = tmp_path / name
    write_key(key, path)
    return path


def disc_study(seed: int, size: int = 48):
    """One slice: a flat background with noise and a disc of contrast 60 (int16), and its label."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(16, size - 16, 2)
    roi = (yy - cy) ** 2 + (xx - cx) ** 2 < rng.uniform(7, 11) ** 2
    image = 400 + 60 * roi + rng.normal(0, 8, (size, size))
    return np.round(image).astype(np.int16)[None], roi.astype(np.uint8)[None]


def write(array, path):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.7, 0.7, 2.0))
    sitk.WriteImage(image, str(path))


def held_out(tmp_path: Path, count: int = 2) -> Path:
    folder = tmp_path / "heldout"
    folder.mkdir()
    for index in range(count):
        image, label = disc_study(index)
        write(image, folder / f"case{index}.nrrd")
        write(label, folder / f"case{index}_label.nrrd")
    return folder


# ---- keys

def test_keygen_writes_a_private_key_once_and_prints_only_its_fingerprint(tmp_path, capsys):
    path = tmp_path / "owner.key"
    code, out, _ = run(["keygen", "--out", path], capsys)
    assert code == 0 and stat.S_IMODE(path.stat().st_mode) == 0o600
    key = read_key(path)
    assert key.fingerprint in out and key.secret.hex() not in out and key.secret.hex() not in repr(key)
    before = sha256(path)
    code, _, err = run(["keygen", "--out", path], capsys)
    assert one_line_error(code, err) and "never overwritten" in err and sha256(path) == before
    assert read_key(path).secret != read_key(key_file(tmp_path, OwnerKey(os.urandom(32)), "second.key")).secret


def test_a_key_file_others_can_read_or_that_is_no_key_is_refused(tmp_path):
    path = key_file(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(ValueError, match="can be read by others"):
        read_key(path)
    other = tmp_path / "not.key"
    other.write_text("hello world\n")
    os.chmod(other, 0o600)
    with pytest.raises(ValueError, match="not a UMedProtect key"):
        read_key(other)


# ---- the mark

@pytest.mark.parametrize("name", sorted(MARKS))
def test_a_mark_is_keyed_bounded_stationary_and_signed_at_the_contour(name):
    mark = MARKS[name]
    seed, other = KEY.seed("mark"), OTHER.seed("mark")
    pattern = mark.pattern(seed, (100, 130))
    assert pattern.dtype == np.float32 and np.abs(pattern).max() <= 1.0 and pattern.std() > 0.3
    assert np.array_equal(pattern, mark.pattern(seed, (100, 130)))  # the key decides it
    assert abs(np.corrcoef(pattern.ravel(), mark.pattern(other, (100, 130)).ravel())[0, 1]) < 0.2
    assert np.array_equal(pattern[:, :64], pattern[:, 64:128])  # one periodic tile: the same wherever it lands
    _, label = disc_study(0)
    roi = label > 0
    change = mark_change(mark, seed, roi, 2.0)
    band = outer_band(roi, 3)
    assert np.abs(change).max() <= 2.0 and not change[~(roi | band)].any()
    full = 2.0 * mark.pattern(seed, roi.shape[-2:])
    assert np.allclose(change[roi], full[None][roi]) and np.allclose(change[band], -full[None][band])


def test_fading_keeps_texture_and_scales_the_contrast():
    image, label = disc_study(3)
    roi = label > 0
    out = faded(image.astype(float), roi, 0.25)
    ring = ndimage.binary_dilation(roi, iterations=3) & ~roi
    before = image[roi].mean() - image[ring].mean()
    assert np.isclose(out[roi].mean() - out[ring].mean(), 0.25 * before)
    assert np.allclose(np.diff(out[roi]), np.diff(image[roi].astype(float)))
    assert np.array_equal(out[~roi], image[~roi])


# ---- the test's validity and power, by construction

def test_the_rank_test_is_exact_under_the_null():
    """A model that never saw the key answers every mark alike in distribution: the key's p-value is uniform, so at
    most alpha of such audits reject (5000 audits of 20 marks x 3 studies, p-values on the grid k/20)."""
    rng = np.random.default_rng(0)
    p_values = np.array([mark_test(rng.normal(size=(20, 3)) + rng.normal(size=(1, 3)), int(rng.integers(20))).p_value
                         for _ in range(5000)])
    for alpha in (0.05, 0.25, 0.5):
        rejected = np.mean(p_values <= alpha)
        assert stats.binomtest(int(rejected * 5000), 5000, alpha).pvalue > 1e-3
    assert p_values.min() == 1 / 20


def test_a_model_that_learnt_the_key_ranks_it_first_and_ties_count_against_it():
    responses = np.random.default_rng(1).normal(size=(100, 2))
    responses[37] += 5.0
    result = mark_test(responses, 37)
    assert result.rank == 1 and result.p_value == 0.01 and result.effect_size > 3
    assert mark_test(np.ones((10, 4)), 3).p_value == 1.0


def test_the_key_hides_among_its_controls_at_a_secret_place():
    seeds, position = mark_seeds(KEY, "nonce-a", 99)
    assert len(seeds) == 100 and seeds[position] == KEY.seed("mark") and len(set(seeds)) == 100
    positions = {mark_seeds(KEY, f"nonce-{index}", 99)[1] for index in range(50)}
    assert len(positions) > 25  # it moves with the audit's nonce


# ---- protect --mark

def test_protect_with_a_mark_alone_changes_only_roi_and_band_within_the_budget(tmp_path, capsys):
    image, label = disc_study(5)
    write(image, tmp_path / "image.nrrd")
    write(label, tmp_path / "label.nrrd")
    key = key_file(tmp_path)
    base = ["protect", "--image", tmp_path / "image.nrrd", "--label", tmp_path / "label.nrrd", "--progress", "none"]
    code, _, err = run(base + ["--output", tmp_path / "none.nrrd", "--design", "none"], capsys)
    assert one_line_error(code, err) and "--mark" in err and not (tmp_path / "none.nrrd").exists()
    code, _, err = run(base + ["--output", tmp_path / "out.nrrd", "--report", tmp_path / "r.json", "--design", "none",
                               "--mark", key], capsys)
    assert code == 0, err
    out = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out.nrrd")))
    report = json.loads((tmp_path / "r.json").read_text())
    roi = label > 0
    change = out.astype(int) - image
    assert not change[~(roi | outer_band(roi, 3))].any() and np.abs(change).max() <= report["epsilon_native"]
    assert report["mark"]["fingerprint"] == KEY.fingerprint and report["mark"]["budget_share"] == 1.0
    assert KEY.secret.hex() not in (tmp_path / "r.json").read_text()
    offset = study_offset(KEY, image)
    expected = np.trunc(mark_change(MARKS["texture"], KEY.seed("mark"), roi, report["epsilon_native"], offset=offset))
    assert np.array_equal(change, expected)  # the key's pattern at the study's offset, truncated to whole numbers
    assert study_offset(KEY, image) == offset and study_offset(OTHER, image) != offset
    assert study_offset(KEY, disc_study(6)[0]) != offset  # each study shifts the tile its own way


def test_averaging_many_marked_studies_does_not_reveal_the_mark():
    """The attacker who knows the method averages the contour-signed detail of every marked slice: with one tile
    position for all studies that recovers the pattern; with each study's secret offset it recovers none of it."""
    from UMedProtectLib.evaluation.mark_audit import average_and_subtract

    studies = [disc_study(seed, 64) for seed in range(40)]
    images = [image.astype(np.float64) for image, _ in studies]
    labels = [label for _, label in studies]
    seed, mark = KEY.seed("mark"), MARKS["texture"]

    def left_after_attack(offsets):
        marked = [image + mark_change(mark, seed, label > 0, 20.0, offset=offset)
                  for image, label, offset in zip(images, labels, offsets)]
        scale = [np.clip(m / 1000.0, 0, 1) for m in marked]
        attacked = average_and_subtract(scale, labels)
        kept = [np.corrcoef((a * 1000.0 - i)[label > 0], (m - i)[label > 0])[0, 1]
                for a, m, i, label in zip(attacked, marked, images, labels)]
        return float(np.mean(kept))

    anchored, shifted = left_after_attack([(0, 0)] * len(images)), left_after_attack([study_offset(KEY, image)
                                                                                     for image in images])
    assert anchored < 0.6 and shifted > 0.85, (anchored, shifted)


def test_a_mark_beside_a_design_takes_half_the_budget(tmp_path, capsys):
    image, label = disc_study(6)
    write(image.astype(np.float32), tmp_path / "image.nrrd")
    write(label, tmp_path / "label.nrrd")
    code, _, err = run(["protect", "--image", tmp_path / "image.nrrd", "--label", tmp_path / "label.nrrd",
                        "--output", tmp_path / "out.nrrd", "--report", tmp_path / "r.json", "--design", "quiet-rim",
                        "--mark", key_file(tmp_path), "--iterations", "0", "--progress", "none"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mark"]["budget_share"] == 0.5
    assert report["linf_native"] <= report["epsilon_native"] + 1e-9


# ---- audit prepare / verdict through the command line

def matched_suspect(probe: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """A segmenter that learnt the key's mark: a threshold of the smoothed image plus a filter matched to the key's
    pattern, so that +pattern inside and -pattern outside pull its contour onto the ROI."""
    image = probe[0].astype(float)
    detail = image - ndimage.gaussian_filter(image, 3)
    matched = ndimage.gaussian_filter(detail * pattern, 1.5)
    score = ndimage.gaussian_filter(image, 1.5) - np.median(image) + 4.0 * matched
    return (score > 15)[None].astype(np.uint8)


def answer(probes: Path, predictions: Path, segment) -> None:
    predictions.mkdir()
    for path in sorted((probes / "probes").iterdir()):
        image = sitk.ReadImage(str(path))
        out = sitk.GetImageFromArray(segment(sitk.GetArrayFromImage(image)))
        out.CopyInformation(image)
        sitk.WriteImage(out, str(predictions / path.name))


def test_audit_detects_a_model_that_learnt_the_key_from_label_maps_alone(tmp_path, capsys):
    key = key_file(tmp_path)
    probes = tmp_path / "probes"
    code, _, err = run(["audit", "prepare", "--key", key, "--studies", held_out(tmp_path), "--out", probes,
                        "--controls", 19, "--epsilon", "20units", "--progress", "none"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in (probes / "probes").iterdir())
    assert len(names) == 40 and names[0].startswith("probe-")
    assert KEY.secret.hex() not in (probes / "audit.json").read_text()
    pattern = MARKS["texture"].pattern(KEY.seed("mark"), (48, 48))
    answer(probes, tmp_path / "preds", lambda probe: matched_suspect(probe, pattern))
    code, out, err = run(["audit", "verdict", "--key", key, "--probes", probes, "--predictions", tmp_path / "preds",
                          "--report", tmp_path / "verdict.json", "--plot", tmp_path / "verdict.png",
                          "--progress", "none"], capsys)
    assert code == 0, err
    report = json.loads((tmp_path / "verdict.json").read_text())
    assert report["test"]["rank"] == 1 and report["test"]["p_value"] == pytest.approx(0.05)
    assert "p = 0.05" in out and "no p-value can fall below 0.05" in out  # 20 marks cannot reach alpha 0.01: said
    assert (tmp_path / "verdict.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audit_bad_inputs_get_one_line(tmp_path, capsys):
    key, other = key_file(tmp_path), key_file(tmp_path, OTHER, "other.key")
    studies, probes = held_out(tmp_path, 1), tmp_path / "probes"
    assert run(["audit", "prepare", "--key", key, "--studies", studies, "--out", probes, "--controls", 4,
                "--progress", "none"], capsys)[0] == 0
    code, _, err = run(["audit", "prepare", "--key", key, "--studies", studies, "--out", probes, "--progress",
                        "none"], capsys)
    assert one_line_error(code, err) and "already exists" in err
    preds = tmp_path / "preds"
    answer(probes, preds, lambda probe: (probe > 430).astype(np.uint8))
    verdict = ["audit", "verdict", "--probes", probes, "--predictions", preds, "--progress", "none"]
    code, _, err = run(verdict + ["--key", other], capsys)
    assert one_line_error(code, err) and "another key" in err
    os.chmod(key, 0o640)
    assert one_line_error(*run(verdict + ["--key", key], capsys)[::2])
    os.chmod(key, 0o600)
    assert run(verdict + ["--key", key], capsys)[0] == 0
    first = sorted(preds.iterdir())[0]
    moved = first.rename(tmp_path / first.name)
    code, _, err = run(verdict + ["--key", key], capsys)
    assert one_line_error(code, err) and "1 of 5 probes have no prediction" in err
    image = sitk.ReadImage(str(moved))
    wrong = sitk.GetImageFromArray(sitk.GetArrayFromImage(image)[:, :40])
    sitk.WriteImage(wrong, str(first))
    code, _, err = run(verdict + ["--key", key], capsys)
    assert one_line_error(code, err) and "grid" in err
    moved.replace(first)
    (preds / "probe-99999.nii.gz").write_bytes(first.read_bytes())
    code, _, err = run(verdict + ["--key", key], capsys)
    assert one_line_error(code, err) and "answer no probe" in err
    audit = json.loads((probes / "audit.json").read_text())
    (probes / "audit.json").write_text(json.dumps({**audit, "controls": 3}))
    (preds / "probe-99999.nii.gz").unlink()
    code, _, err = run(verdict + ["--key", key], capsys)
    assert one_line_error(code, err) and "changed" in err


def test_roi_response_counts_inside_minus_the_outer_band():
    _, label = disc_study(2)
    roi = label > 0
    assert roi_response(label, roi) == 1.0
    grown = ndimage.binary_dilation(roi, iterations=5)
    assert roi_response(grown, roi) == pytest.approx(1.0 - np.count_nonzero(outer_band(roi, 3)) / roi.sum())
