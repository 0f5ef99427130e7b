"""The settings of a protection run: one table that says, once, each setting's type, default, bounds and help.

Every field of ProtectSettings is declared with `setting(...)`: its default, its bounds or choices, its help text
and, for the options of the command line, its flag and how the flag's text reads and writes. From that table the
settings are validated (__post_init__), the command line's protection options are generated (cli/main.py) and read back
(`with_options`), and settings are written out as command-line arguments again (`to_args`, for the Slicer panel).
No torch and no numpy here: the panel imports this module in Slicer's own process.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from numbers import Integral, Real
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from .budget import (FRACTION, GREY_LEVELS, MODALITIES, PAPER_EPSILON, ROBUST, WINDOW_PRESETS, ResolvedBudget,
                     StudyReading, check_amount, format_budget, parse_budget, parse_epsilon, parse_window,
                     resolve_budget)
from .designs import DESIGNS, Design
from .errors import InputError

__all__ = ["BUDGET_STEPS", "COMMAND_LINE", "DEFAULT_BUDGET_STEPS", "DESIGNS", "DEVICES", "OPTIONS", "PANEL_PRESETS",
           "PRESETS", "Bounds", "Option", "ProtectSettings", "epsilon_of_steps", "panel_bounds", "parse_epsilon",
           "parse_labels"]


@dataclass(frozen=True)
class Preset:
    """A fitting schedule: a fixed number of iterations, or epochs over every ROI slice (the paper's schedule)."""

    iterations: Optional[int] = None
    epochs: Optional[int] = None
    learning_rate: float = 1e-3
    stop_early: bool = True  # stop once the surrogate's loss stays below settings.loss_threshold

    def describe(self) -> str:
        """One phrase for help texts."""
        if self.epochs is not None:
            return f"{self.epochs} epochs over the ROI slices, Adam {self.learning_rate:g}"
        return f"{self.iterations} iterations"


# The cheap presets are this project's (docs/method.md); `paper` is the published
# generation budget: 100 epochs over the data, Adam 1e-4 for generators and surrogate, no early stop.
PRESETS = {
    "fast": Preset(iterations=60),
    "balanced": Preset(iterations=150),
    "thorough": Preset(iterations=600),
    "paper": Preset(epochs=100, learning_rate=1e-4, stop_early=False),
}
# The presets that finish in minutes on one study: the ones the Slicer panel offers (the paper's takes hours).
PANEL_PRESETS = tuple(name for name, preset in PRESETS.items() if preset.epochs is None)
DEVICES = ("auto", "cpu", "cuda", "mps")
# The intensities between these percentiles of a study are its robust range, the window epsilon is a fraction of.
PERCENTILES = (0.5, 99.5)
INT64_MAX = 2**63 - 1  # the largest seed and label value


@dataclass(frozen=True)
class Bounds:
    """The values a number setting takes: from low to high (an end open when said), whole numbers if `whole`."""

    low: float
    high: float = math.inf
    whole: bool = False
    open_low: bool = False
    open_high: bool = False
    step: int = 1  # whole numbers only: the value must be a multiple of it

    def admits(self, value: Any) -> bool:
        """Whether the value is a number of the right kind within the bounds."""
        if self.whole and (not isinstance(value, Integral) or isinstance(value, bool)):
            return False
        if not self.whole and not (isinstance(value, Real) and math.isfinite(value)):
            return False
        above = value > self.low if self.open_low else value >= self.low
        below = value < self.high if self.open_high else value <= self.high
        return above and below and (not self.whole or value % self.step == 0)

    def describe(self) -> str:
        """The rule in words, for refusals."""
        if self.whole:
            return f"a whole number from {self.low} to {self.high}" + (f", a multiple of {self.step}"
                                                                        if self.step > 1 else "")
        if self.high == math.inf:
            return f"a finite number {'above' if self.open_low else 'at least'} {self.low:g}"
        return (f"a finite number in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.open_high else ']'}")


@dataclass(frozen=True)
class Option:
    """One setting: default, allowed values and help, and whether and how the command line gives it."""

    default: Any
    help: str
    bounds: Optional[Bounds] = None
    choices: Tuple[str, ...] = ()
    check: Optional[Callable[[Any], Any]] = None  # raises InputError for a value bounds and choices cannot describe
    optional: bool = False  # None is allowed and means "not given" (the preset's, every label, the robust range)
    flag: bool = False  # an option of the command line, --name-with-dashes
    metavar: Optional[str] = None
    read: Optional[Callable[[str], Any]] = None  # the flag's text -> the value (whole numbers: argparse's int)
    write: Callable[[Any], str] = str  # the value -> the flag's text
    also: Tuple[str, ...] = ()  # further fields the flag sets together with this one (epsilon's unit)
    signed: bool = False  # the text may start with '-': written as one token, --flag=text
    exclusive: Optional[str] = None  # options of one group exclude each other
    default_text: Optional[str] = None  # the default as help shows it, where the default value would not say it
    name: str = ""  # the field's name, filled in by the table

    @property
    def fields(self) -> Tuple[str, ...]:
        """The settings fields this option sets."""
        return (self.name, *self.also)

    @property
    def flag_name(self) -> str:
        """E.g. --band-width."""
        return "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        """E.g. "band width", for messages."""
        return self.name.replace("_", " ")

    @property
    def argument_type(self) -> Optional[Callable[[str], Any]]:
        """What argparse converts the text with: int for whole numbers, else nothing (read by `value_of`)."""
        return int if self.bounds is not None and self.bounds.whole else None

    def help_text(self) -> str:
        """The help with its default in brackets, as the command line shows it."""
        shown = self.default_text if self.default is None else self.write(self.value_from(self.default))
        return f"{self.help} [{shown}]" if shown is not None else self.help

    def value_from(self, default: Any) -> Any:
        """The option's value when its fields hold their defaults (epsilon's value is its pair with the unit)."""
        return (default, *(OPTIONS[name].default for name in self.also)) if self.also else default

    def value(self, settings: "ProtectSettings") -> Any:
        """The option's value in these settings (a tuple when it sets several fields; None when not given)."""
        values = tuple(getattr(settings, name) for name in self.fields)
        return values if self.also and values[0] is not None else values[0]

    def changes(self, given: Any) -> Dict[str, Any]:
        """The field changes a given command-line value makes."""
        read = self.read or self.argument_type
        value = read(given) if read is not None and isinstance(given, str) else given
        return dict(zip(self.fields, value)) if self.also else {self.name: value}

    def validate(self, value: Any) -> None:
        """Refuse a value outside the option's choices, bounds or check, in one sentence."""
        if value is None and self.optional:
            return
        if self.choices and value not in self.choices:
            raise InputError(f"{self.label} {value!r} is unknown; choose one of {', '.join(self.choices)}")
        if self.bounds is not None and not self.bounds.admits(value):
            raise InputError(f"{self.label} {value!r} must be {self.bounds.describe()}")
        if self.check is not None:
            self.check(value)


def setting(default: Any, help: str, **rules: Any) -> Any:
    """A field of ProtectSettings with its row of the settings table (see Option)."""
    return field(default=default, metadata={"option": Option(default, help, **rules)})


def parse_labels(text: Optional[str]) -> Optional[Tuple[int, ...]]:
    """Read a comma-separated list of label values ("1,2"); None or "" means every label > 0."""
    if text is None or not text.strip():
        return None
    try:
        labels = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise InputError(f"--labels {text!r} must be comma-separated integers, e.g. 1,2") from None
    if not labels or any(v <= 0 for v in labels):
        raise InputError(f"--labels {text!r} must list label values greater than 0")
    return labels


def _check_labels(labels: Tuple[int, ...]) -> None:
    """Label values are whole numbers a label map can hold, above 0."""
    if not all(isinstance(v, Integral) and 0 < v <= INT64_MAX for v in labels):
        raise InputError(f"labels {labels!r} must be whole numbers from 1 to {INT64_MAX}")


def _check_percentiles(percentiles: Tuple[float, float]) -> None:
    """Two percentiles, low before high, within 0..100."""
    low, high = percentiles
    if not all(isinstance(v, Real) for v in percentiles) or not 0.0 <= low < high <= 100.0:
        raise InputError(f"percentiles {percentiles} must satisfy 0 <= low < high <= 100")


def _check_device(device: str) -> None:
    """A device name torch knows: one of DEVICES or cuda:N."""
    if not isinstance(device, str) or not (device in DEVICES or device.startswith("cuda:")):
        raise InputError(f"device {device!r} is unknown; choose auto, cpu, cuda, cuda:N or mps")


_EPSILON_HELP = ("largest change of a voxel: a fraction of the reading window (4/255 or 0.0157), or an amount in the "
                 "image's units (10HU for CT, 2.5units otherwise)")
_EPSILON_DEFAULT = ("a CT in HU: one grey level of the narrowest standard window showing the ROI, at least the image's "
                    "step; any other image: 4/255 of the robust range")
_MODALITY_HELP = ("how the image is read: ct (in HU: the default budget and the visibility use the standard CT "
                  "windows), other, or auto (what the study's header says, e.g. a DICOM Modality CT with a rescale "
                  "to HU; without one, a CT when at least one voxel in a hundred lies at air, -1100 to -900 HU)")
_WINDOW_HELP = ("reading window, level,width (e.g. 40,400) or " + ", ".join((*WINDOW_PRESETS, ROBUST)) + ": the "
                "fraction in --epsilon is of its width, and the report states visibility in it")
# In a reader's words; docs/method.md gives each design in the method's terms and why published is the default.
_DESIGN_HELP = ("how the change is made: " + "; ".join(f"{name}: {design.plain}" for name, design in DESIGNS.items())
                + ". published is the default as the paper's method, kept until a design is measured better on the "
                "data owners' kind of data (docs/method.md)")
_PRESET_HELP = "training effort: " + "; ".join(f"{name} {preset.describe()}" for name, preset in PRESETS.items())


def _whole(low: int, high: int, step: int = 1) -> Bounds:
    """Bounds of a whole-number setting."""
    return Bounds(low, high, whole=True, step=step)


@dataclass(frozen=True)
class ProtectSettings:
    """Everything that decides a protection run; stored in reports and profiles.

    Each field is declared once below with its default, bounds or choices and help; `umed-protect protect --help`
    and `OPTIONS` are generated from them. The ones a user sets most:

    Args:
        epsilon: The budget, the largest change of a voxel: a fraction of the reading window, or an amount in the
            image's units when `epsilon_unit` is "HU" or "units"; None for the default of the study's reading.
        epsilon_unit: What `epsilon` is in: a fraction of the window, "HU" or "units".
        window: The reading window, "level,width" or a named window; None for the robust intensity range.
        modality: How the image is read, one of `MODALITIES` ("auto" tells a CT in HU by its header, else its air).
        design: The perturbation design, a name in the registry `DESIGNS` (`designs/`).
        band_width: Radius in pixels of the band around each contour that is perturbed with the ROI.
        labels: The label values that form the ROI; None for every label above 0.
        preset: The training effort, a name in `PRESETS`.
        iterations: Training iterations, overriding the preset (give this or `epochs`).
        epochs: Training epochs over the ROI slices, overriding the preset.
        device: One of `DEVICES`, or "cuda:N" for the GPU N.
        seed: The random seed: the same seed, settings and inputs give the same result on the CPU.

    The remaining fields set the networks' sizes and the fit's details (see their help below).

    Raises:
        InputError: A value outside its bounds or choices, or both `iterations` and `epochs`.
    """

    # The budget: a fraction of the reading window (the robust range unless `window` names another), or an
    # amount in native units when epsilon_unit is "HU" or "units"; None: the default of the study's reading
    # (budget.py); resolved per study by budget_for.
    epsilon: Optional[float] = setting(
        None, _EPSILON_HELP, check=lambda amount: check_amount(*amount), optional=True, flag=True, metavar="E",
        read=parse_budget, write=lambda amount: format_budget(*amount), also=("epsilon_unit",), signed=True,
        default_text=_EPSILON_DEFAULT)
    epsilon_unit: str = setting(FRACTION, "what epsilon is in: a fraction of the reading window, HU or units")
    window: Optional[str] = setting(None, _WINDOW_HELP, optional=True, flag=True, metavar="L,W", read=parse_window,
                                    signed=True, default_text=f"{ROBUST}: the {PERCENTILES[0]:g}-{PERCENTILES[1]:g} "
                                    "percentile range")
    modality: str = setting("auto", _MODALITY_HELP, choices=MODALITIES, flag=True)
    design: str = setting("published", _DESIGN_HELP, choices=tuple(DESIGNS), flag=True)
    carrier_period: int = setting(8, "period in pixels of the carrier design's checker carrier", bounds=_whole(2, 64))
    band_width: int = setting(3, "contour band radius in pixels", bounds=_whole(1, 16), flag=True, metavar="PX")
    labels: Optional[Tuple[int, ...]] = setting(
        None, "label values that form the region to protect", check=_check_labels, optional=True, flag=True,
        metavar="1,2", read=parse_labels, write=lambda labels: ",".join(map(str, labels)),
        default_text="every label > 0")
    preset: str = setting("balanced", _PRESET_HELP, choices=tuple(PRESETS), flag=True)
    iterations: Optional[int] = setting(
        None, "training iterations (overrides --preset)", bounds=_whole(0, 100_000), optional=True, flag=True,
        metavar="N", exclusive="schedule")
    epochs: Optional[int] = setting(
        None, "training epochs over the ROI slices (overrides --preset)", bounds=_whole(0, 10_000), optional=True,
        flag=True, metavar="N", exclusive="schedule")
    surrogate_every: int = setting(5, "fitting iterations per surrogate update (a design may set its own)",
                                   bounds=_whole(1, 10_000))
    loss_threshold: float = setting(0.02, "a preset that stops early does so once the surrogate's loss stays below it",
                                    bounds=Bounds(0.0))
    # Upper bounds of the sizes: a profile is someone else's file, and an absurd value (e.g. generator_width 3000)
    # would allocate tens of GB before anything else could fail.
    batch_size: int = setting(16, "ROI slices per fitting step", bounds=_whole(1, 256))
    patch_size: int = setting(64, "side in pixels of the patches the networks are fitted on",
                              bounds=_whole(16, 512, step=8))
    margin: int = setting(8, "pixels of context kept around the ROI and its band in each slice window",
                          bounds=_whole(0, 64))
    texture_floor: float = setting(0.25, "smallest share of the budget the texture bound leaves a smooth region",
                                   bounds=Bounds(0.0, 1.0, open_low=True))
    cdc_theta: float = setting(0.7, "weight of the central difference in the contour generator's convolutions",
                               bounds=Bounds(0.0, 1.0))
    generator_width: int = setting(16, "channels of the generators' first layer", bounds=_whole(4, 128))
    surrogate_width: int = setting(8, "channels of the surrogate U-Net's first layer", bounds=_whole(4, 128))
    learning_rate: Optional[float] = setting(
        None, "Adam's learning rate of the fitting", bounds=Bounds(0.0, 1.0, open_low=True, open_high=True),
        optional=True, default_text="the preset's")
    percentiles: Tuple[float, float] = setting(PERCENTILES, "the percentiles that bound a study's robust range",
                                               check=_check_percentiles)
    device: str = setting("auto", f"{', '.join(DEVICES)} or cuda:N", check=_check_device, flag=True, metavar="DEV")
    seed: int = setting(0, "random seed; same seed, same output on CPU", bounds=_whole(0, INT64_MAX), flag=True,
                        metavar="S")

    def __post_init__(self) -> None:
        if self.window is not None:  # stored in its usual form, so that equal windows compare equal
            object.__setattr__(self, "window", parse_window(self.window))
        for option in OPTIONS.values():
            option.validate(option.value(self))
        for group in {option.exclusive for option in COMMAND_LINE if option.exclusive}:
            given = [option.name for option in COMMAND_LINE if option.exclusive == group
                     and getattr(self, option.name) is not None]
            if len(given) > 1:
                raise InputError(f"give either {' or '.join(given)}, not both")

    @property
    def design_spec(self) -> Design:
        """The design's strategy object (masks, perturbation, fitting) from the registry."""
        return DESIGNS[self.design]

    @property
    def schedule(self) -> Preset:
        """The fitting schedule: the preset's, with explicit iterations, epochs or learning rate taking precedence."""
        preset = PRESETS[self.preset]
        if self.iterations is not None:
            preset = replace(preset, iterations=self.iterations, epochs=None)
        elif self.epochs is not None:
            preset = replace(preset, iterations=None, epochs=self.epochs)
        if self.learning_rate is not None:
            preset = replace(preset, learning_rate=self.learning_rate)
        return preset

    def training_iterations(self, slices: int, batch_size: int) -> int:
        """Iterations of the min-min loop for `slices` ROI slices drawn `batch_size` at a time."""
        schedule = self.schedule
        if schedule.epochs is None:
            return schedule.iterations
        return schedule.epochs * -(-slices // batch_size)

    def budget_for(self, robust_low: float, robust_high: float,
                   reading: Optional[StudyReading] = None) -> ResolvedBudget:
        """The budget resolved once on a study's robust range and reading: the one value (fraction, native amount,
        window, how it came about) that the method carries down to the clip."""
        return resolve_budget(self.epsilon, self.epsilon_unit, self.window, robust_low, robust_high, reading)

    def with_changes(self, **changes) -> "ProtectSettings":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def with_options(self, given: Mapping[str, Any]) -> "ProtectSettings":
        """A copy with the command-line options given (text or argparse's value; None or absent: not given)."""
        changes: Dict[str, Any] = {}
        for option in COMMAND_LINE:
            if given.get(option.name) is not None:
                changes.update(option.changes(given[option.name]))
        return self.with_changes(**changes)

    def to_args(self) -> List[str]:
        """The command-line options that give these settings (every option that is set; None ones are left out)."""
        fixed = [name for name, option in OPTIONS.items()
                 if name not in COMMAND_LINE_FIELDS and getattr(self, name) != option.default]
        if fixed:
            raise ValueError(f"{', '.join(fixed)} cannot be given on the command line; only in a profile or the API")
        args: List[str] = []
        for option in COMMAND_LINE:
            value = option.value(self)
            if value is None:
                continue
            text = option.write(value)
            args += [f"{option.flag_name}={text}"] if option.signed else [option.flag_name, text]
        return args

    def to_dict(self) -> dict:
        """Plain JSON-able form."""
        data = asdict(self)
        data["labels"] = list(self.labels) if self.labels is not None else None
        data["percentiles"] = list(self.percentiles)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "ProtectSettings":
        """Inverse of to_dict; unknown keys are ignored so that older profiles stay readable."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if known.get("labels") is not None:
            known["labels"] = tuple(known["labels"])
        if "percentiles" in known:
            known["percentiles"] = tuple(known["percentiles"])
        return cls(**known)


# The settings table, in field order, and the options of the command line among them.
OPTIONS: Dict[str, Option] = {f.name: replace(f.metadata["option"], name=f.name) for f in fields(ProtectSettings)}
COMMAND_LINE: Tuple[Option, ...] = tuple(option for option in OPTIONS.values() if option.flag)
COMMAND_LINE_FIELDS = frozenset(name for option in COMMAND_LINE for name in option.fields)
# The panel gives the budget in grey levels of an 8-bit display of the window (epsilon = steps/255): every fraction
# on that grid that epsilon's (0, 1] allows, so the panel and the engine accept the same budgets.
BUDGET_STEPS = (1, GREY_LEVELS)
DEFAULT_BUDGET_STEPS = round(PAPER_EPSILON * GREY_LEVELS)


# The panel's spin boxes hold a 32-bit int: its whole-number settings stop there where the engine's go further.
SPIN_BOX_MAX = 2**31 - 1


def panel_bounds(name: str) -> Tuple[int, int]:
    """The lowest and highest value the panel offers for a whole-number setting: the engine's, within a spin box."""
    bounds = OPTIONS[name].bounds
    return int(bounds.low), int(min(bounds.high, SPIN_BOX_MAX))


def epsilon_of_steps(steps: int) -> float:
    """The budget, as a fraction of the window, of `steps` grey levels."""
    return int(steps) / GREY_LEVELS


def settings_from(args: Any, base: Optional[ProtectSettings] = None) -> ProtectSettings:
    """ProtectSettings from the options given; unset options keep `base`'s values (a profile's) or the defaults."""
    # A profile's device and labels belong to the machine and study it was fitted on, not to this run.
    settings = base.with_changes(device="auto", labels=None, seed=0) if base is not None else ProtectSettings()
    return settings.with_options(vars(args))
