"""The settings table: torch-free import, validation from the table, and the command line generated from it."""

import math
import subprocess
import sys
from pathlib import Path

import pytest

from UMedProtectLib.budget import format_budget, parse_budget
from UMedProtectLib.settings import settings_from
from UMedProtectLib.cli.main import build_parser
from UMedProtectLib.errors import InputError
from UMedProtectLib.settings import COMMAND_LINE, OPTIONS, ProtectSettings

REPOSITORY = Path(__file__).resolve().parents[1]


def test_settings_and_designs_import_without_torch():
    """The Slicer panel imports the settings in Slicer's own process: that must not load torch (or numpy)."""
    code = ("import sys; import UMedProtectLib.settings, UMedProtectLib.budget, UMedProtectLib.designs; "
            "from UMedProtectLib.settings import ProtectSettings; ProtectSettings().to_dict(); "
            "print(sorted(m for m in ('torch', 'numpy', 'SimpleITK') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    engine = subprocess.run([sys.executable, "-c", "import sys, UMedProtectLib; UMedProtectLib.protect; "
                             "print('torch' in sys.modules)"], cwd=REPOSITORY, capture_output=True, text=True,
                            check=True)
    assert engine.stdout.strip() == "True"  # the engine's names are still there, imported on first use


def test_every_field_has_its_row_in_the_table_and_its_default_there():
    defaults = ProtectSettings()
    assert list(OPTIONS) == list(ProtectSettings.__dataclass_fields__)
    for name, option in OPTIONS.items():
        assert getattr(defaults, name) == option.default and option.help, name


@pytest.mark.parametrize("name", [name for name, option in OPTIONS.items() if option.bounds is not None])
def test_bounds_in_the_table_are_the_bounds_enforced(name):
    bounds = OPTIONS[name].bounds
    inside = [bounds.low if not bounds.open_low else bounds.low + 0.5 * min(1.0, bounds.high - bounds.low)]
    if math.isfinite(bounds.high):
        inside.append(bounds.high if not bounds.open_high else bounds.high - 0.5 * min(1.0, bounds.high - bounds.low))
    for value in inside:
        ProtectSettings(**{name: value})
    outside = [bounds.low - bounds.step, float("nan"), "64"] + ([bounds.high + bounds.step]
                                                               if math.isfinite(bounds.high) else [])
    if bounds.whole:
        outside.append(bounds.low + 0.5)
    for value in outside:
        with pytest.raises(InputError, match=f"{name.replace('_', ' ')} .* must be"):
            ProtectSettings(**{name: value})


def test_the_command_line_is_generated_from_the_table():
    protect = build_parser()._subparsers._group_actions[0].choices["protect"]
    actions = {action.dest: action for action in protect._actions}
    for option in COMMAND_LINE:
        action = actions[option.name]
        assert action.option_strings == [option.flag_name]
        assert (action.choices or ()) == list(option.choices) or not option.choices
        assert action.default is None  # "not given": the default comes from the settings (or a profile)
        assert action.help == option.help_text()
    assert "[a CT in HU: one grey level of the narrowest standard window" in actions["epsilon"].help
    assert "4/255 of the robust range]" in actions["epsilon"].help and "[3]" in actions["band_width"].help
    with pytest.raises(Exception, match="not allowed with argument"):
        build_parser().parse_args(["demo", "--iterations", "1", "--epochs", "1"])


@pytest.mark.parametrize("settings", [
    ProtectSettings(),
    ProtectSettings(epsilon=6 / 255, window="-600,1500", band_width=2, labels=(2, 5), preset="thorough",
                    iterations=7, device="cuda:1", seed=123456789012),
    ProtectSettings(epsilon=10.0, epsilon_unit="HU", window="lung", design="carrier", epochs=3, device="cpu"),
    ProtectSettings(epsilon=0.0157, design="quiet", preset="paper"),
    ProtectSettings(epsilon=2.5, epsilon_unit="units", window="40.5,80"),
])
def test_to_args_read_back_by_the_real_parser_gives_the_same_settings(settings):
    argv = ["demo", *settings.to_args()]
    assert settings_from(build_parser().parse_args(argv)) == settings
    signed = [a for a in argv if a.startswith(("--epsilon", "--window"))]
    assert all("=" in a for a in signed)  # one token each: a negative level must not read as an option


def test_budget_text_reads_back_as_exactly_the_amount():
    assert format_budget(4 / 255, "fraction") == "4/255"
    for amount, unit in ((4 / 255, "fraction"), (0.0157, "fraction"), (1 / 3, "fraction"), (10.0, "HU"),
                         (2.5, "units"), (1e-3, "HU")):
        assert parse_budget(format_budget(amount, unit)) == (amount, unit)


def test_settings_the_command_line_cannot_give_are_refused_by_to_args():
    with pytest.raises(ValueError, match="batch_size"):
        ProtectSettings(batch_size=4).to_args()


def test_options_not_given_keep_the_profile_settings():
    base = ProtectSettings(band_width=5, design="carrier", device="cpu", seed=9, labels=(1,))
    given = settings_from(build_parser().parse_args(["demo", "--epsilon", "10HU"]), base)
    assert given == base.with_changes(epsilon=10.0, epsilon_unit="HU", device="auto", seed=0, labels=None)


def test_the_design_help_is_in_a_readers_words_and_says_why_published_is_the_default():
    from UMedProtectLib.designs import DESIGNS

    help_text = OPTIONS["design"].help
    for design in DESIGNS.values():
        assert f"{design.name}: {design.plain}" in help_text and design.description not in help_text
    for term in ("CDC", "LBP", "surrogate", "epsilon", "error-minimising"):
        assert term not in help_text
    assert "published is the default as the paper's method, kept until a design is measured better" in help_text
