"""The budget grammar: fractions, native amounts (HU, units) and reading windows; resolved per study."""

import json
import re

import numpy as np
import pytest
import SimpleITK as sitk

from UMedProtectLib import ProtectSettings, fit_profile
from UMedProtectLib.budget import FRACTION, parse_budget, parse_window, resolve_budget
from UMedProtectLib.cli.main import main
from UMedProtectLib.errors import InputError

from conftest import blob_study, sitk_image


def _refused(argv, capsys, tmp_path) -> str:
    """Run protect with argv's budget options on a small study; assert exit 2 with one line; return the line."""
    image, label = blob_study()
    sitk.WriteImage(sitk_image(image), str(tmp_path / "i.nrrd"))
    sitk.WriteImage(sitk_image(label), str(tmp_path / "l.nrrd"))
    code = main(["protect", "--image", str(tmp_path / "i.nrrd"), "--label", str(tmp_path / "l.nrrd"),
                 "--output", str(tmp_path / "o.nrrd"), "--iterations", "0", "--progress", "none", *argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("umed-protect: error: "), (code, err)
    assert not (tmp_path / "o.nrrd").exists()
    return lines[0]


def test_huge_epsilon_is_a_range_error_not_an_overflow(capsys, tmp_path):
    assert "outside (0, 1]" in _refused(["--epsilon", "1e400"], capsys, tmp_path)


def test_negative_epsilon_as_separate_argument_gets_the_range_message(capsys, tmp_path):
    assert "outside (0, 1]" in _refused(["--epsilon", "-4/255"], capsys, tmp_path)


@pytest.mark.parametrize("text, amount, unit", [
    ("4/255", 4 / 255, FRACTION), (" 0.0157 ", 0.0157, FRACTION), ("10HU", 10.0, "HU"), ("10 hu", 10.0, "HU"),
    ("2.5units", 2.5, "units"), ("0.5 units", 0.5, "units"),
])
def test_budget_forms(text, amount, unit):
    assert parse_budget(text) == (pytest.approx(amount), unit)


@pytest.mark.parametrize("text, message", [
    ("0", "outside (0, 1]"), ("2", "outside (0, 1]"), ("-4/255", "outside (0, 1]"), ("1e400", "outside (0, 1]"),
    ("0HU", "positive amount"), ("-5HU", "positive amount"), ("1e400HU", "positive amount"),
    ("fourHU", "not a number"), ("nan", "not a number"), ("4/0", "not a number"), ("10 mm", "not a number"),
    # 4/255HU would be 0.0157 HU, almost surely meant as 4/255 of the window: a fraction with a unit is refused.
    ("4/255HU", "mixes a fraction with a unit"), ("1/2 units", "mixes a fraction with a unit"),
])
def test_bad_budgets_are_refused_with_a_reason(text, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_budget(text)


@pytest.mark.parametrize("text, usual", [
    ("40,400", "40,400"), (" -600, 1500 ", "-600,1500"), ("Soft-Tissue", "soft-tissue"), ("robust", "robust"),
    ("40.5,80.25", "40.5,80.25"),
])
def test_window_forms(text, usual):
    assert parse_window(text) == usual


@pytest.mark.parametrize("text", ["40", "40,0", "40,-5", "a,b", "1,2,3", "1e400,10", "liver"])
def test_bad_windows_are_refused(text):
    with pytest.raises(InputError, match="--window"):
        parse_window(text)


def test_the_three_ways_resolve_on_a_chest_ct_range():
    # The chest CT: robust range about -1020..530 HU.
    today = resolve_budget(4 / 255, FRACTION, None, -1020.0, 530.0)
    assert today.native == pytest.approx(24.31, abs=0.01) and today.epsilon == pytest.approx(4 / 255)
    assert today.window.name == "robust range" and today.of_window == pytest.approx(4 / 255)
    soft = resolve_budget(4 / 255, FRACTION, "soft-tissue", -1020.0, 530.0)
    assert soft.native == pytest.approx(6.27, abs=0.01) and soft.epsilon == pytest.approx(soft.native / 1550)
    assert (soft.window.low, soft.window.high) == (-160.0, 240.0)
    hu = resolve_budget(10.0, "HU", "brain", -1020.0, 530.0)
    assert hu.native == 10.0 and hu.of_window == pytest.approx(10 / 80) and hu.given == "10 HU"
    with pytest.raises(InputError, match="more than this image's whole robust intensity range"):
        resolve_budget(2000.0, "HU", None, -1020.0, 530.0)
    with pytest.raises(InputError, match="more than"):
        resolve_budget(1.0, FRACTION, "-600,4000", -1020.0, 530.0)


def test_settings_keep_the_budget_as_given_and_resolve_it_per_study():
    settings = ProtectSettings(epsilon=10.0, epsilon_unit="HU", window="-600, 1500")
    assert settings.window == "-600,1500"
    assert ProtectSettings.from_dict(settings.to_dict()) == settings
    budget = settings.budget_for(-1000.0, 1000.0)
    assert budget.epsilon == pytest.approx(10 / 2000) and budget.native == 10.0 and budget.given == "10 HU"
    assert budget.window.name == "given" and budget.of_window == pytest.approx(10 / 1500)
    with pytest.raises(InputError, match="outside"):
        ProtectSettings(epsilon=10.0)  # a fraction above 1: the unit was forgotten
    with pytest.raises(InputError, match="--window"):
        ProtectSettings(window="wide")


def test_negative_window_level_on_the_command_line_and_in_a_profile(tmp_path, capsys):
    image, label = blob_study()
    sitk.WriteImage(sitk_image(image), str(tmp_path / "i.nrrd"))
    sitk.WriteImage(sitk_image(label), str(tmp_path / "l.nrrd"))
    common = ["--image", str(tmp_path / "i.nrrd"), "--label", str(tmp_path / "l.nrrd"), "--iterations", "0",
              "--progress", "none"]
    code = main(["protect", *common, "--output", str(tmp_path / "o.nrrd"), "--report", str(tmp_path / "r.json"),
                 "--profile-out", str(tmp_path / "p.pt"), "--window", "-100,1000", "--epsilon", "3HU"])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["visibility"]["window"]["level"] == -100 and report["epsilon_native"] == 3.0
    # The profile keeps the budget as given: applied to another study it is 3 HU there too.
    code = main(["protect", *common, "--output", str(tmp_path / "o2.nrrd"), "--report", str(tmp_path / "r2.json"),
                 "--profile", str(tmp_path / "p.pt")])
    assert code == 0, capsys.readouterr().err
    applied = json.loads((tmp_path / "r2.json").read_text())
    assert applied["epsilon_native"] == 3.0 and applied["settings"]["window"] == "-100,1000"


def test_fit_profile_trains_at_the_median_of_the_studies_resolved_budgets():
    studies = [blob_study(seed=seed) for seed in range(3)]
    studies[1] = (studies[1][0] * 2, studies[1][1])  # twice the range: half the fraction for the same HU
    spans = [np.subtract(*np.percentile(image, (99.5, 0.5))) for image, _ in studies]
    profile = fit_profile(studies, ProtectSettings(epsilon=20.0, epsilon_unit="HU", iterations=0, device="cpu"))
    assert profile.info["fitted_epsilon"] == pytest.approx(float(np.median([20.0 / s for s in spans])))
    assert profile.settings.epsilon == 20.0 and profile.settings.epsilon_unit == "HU"


def test_a_huge_exponent_is_refused_at_once():
    # Fraction("1e999999999") would build a billion-digit integer: the parser must not.
    with pytest.raises(InputError, match="outside"):
        parse_budget("1e999999999")
    with pytest.raises(InputError, match="positive amount"):
        parse_budget("-1e999999999HU")


def test_default_budget_follows_the_reading_of_the_study():
    from UMedProtectLib.budget import STEP_BUDGET, StudyReading

    brain = StudyReading(ct=True, roi_median=17.0, step=0.0)
    assert [w.name for w in brain.covering] == ["brain", "soft-tissue", "lung", "bone"]  # narrowest first
    default = resolve_budget(None, FRACTION, None, -1024.0, 1354.0, brain)
    assert default.window.name == "brain" and default.native == pytest.approx(80 / 255)
    assert default.of_window == pytest.approx(1 / 255) and "one grey level of the brain window" in default.given
    # An integer image cannot change by a fraction of its step: raised, and said so.
    integer = resolve_budget(None, FRACTION, None, -1024.0, 1354.0, StudyReading(True, 17.0, 1.0))
    assert integer.native == STEP_BUDGET and "raised to 1.5 steps" in integer.given
    # Soft tissue at 100 HU is outside the brain window: the soft-tissue window is the narrowest showing it.
    soft = resolve_budget(None, FRACTION, None, -1024.0, 1354.0, StudyReading(True, 100.0, 1.0))
    assert soft.window.name == "soft-tissue" and soft.native == pytest.approx(400 / 255)
    bone = resolve_budget(None, FRACTION, None, -1024.0, 2000.0, StudyReading(True, 700.0, 1.0))
    assert bone.window.name == "bone" and bone.native == pytest.approx(1800 / 255)
    # A window the user names is the default's window.
    named = resolve_budget(None, FRACTION, "soft-tissue", -1024.0, 1354.0, brain)
    assert named.window.name == "soft-tissue" and named.native == pytest.approx(400 / 255)
    # Not a CT (or no reading): the paper's 4/255 of the robust range.
    for reading in (StudyReading(False, 17.0, 1.0), None):
        other = resolve_budget(None, FRACTION, None, 0.0, 234.0, reading)
        assert other.window.name == "robust range" and other.native == pytest.approx(4 / 255 * 234)
    # A budget given explicitly is kept, whatever the reading.
    kept = resolve_budget(4 / 255, FRACTION, None, -1024.0, 1354.0, brain)
    assert kept.native == pytest.approx(4 / 255 * 2378) and kept.window.name == "robust range"


def test_a_ct_is_told_by_its_air_and_the_modality_overrides_the_rule(sample_files):
    from test_visibility import synthetic_ct

    from UMedProtectLib.files.image_io import read_image
    from UMedProtectLib.method.modality import is_ct_in_hu, read_study

    ct, lesion = synthetic_ct()
    mr = read_image(sample_files[0]).array
    assert is_ct_in_hu(ct) and not is_ct_in_hu(mr)
    reading = read_study(ct, lesion > 0)
    assert reading.ct and reading.step == 1.0 and reading.roi_median == float(np.median(ct[lesion > 0]))
    assert read_study(ct.astype(np.float32), lesion > 0).step == 0.0
    body = ct[:, 16:48, 16:48]  # cropped inside the body: no air, so not told a CT unless said
    assert not read_study(body, lesion[:, 16:48, 16:48] > 0).ct
    assert read_study(body, lesion[:, 16:48, 16:48] > 0, "ct").ct
    assert not read_study(ct, lesion > 0, "other").ct
    with pytest.raises(InputError, match="modality 'mr' is unknown"):
        ProtectSettings(modality="mr")
