"""The budget grammar: how large a change may be, as a fraction of a reading window or in the image's own units.

Three ways of giving it (docs/method.md): a fraction such as 4/255 of the study's robust intensity range;
the same fraction of a reading window (--window 40,400 or a preset such as soft-tissue); or a native amount such as
10HU (CT) or 2.5units (any other modality). Given none, the default depends on how the study is read
(docs/visibility.md): for a CT in HU, one grey level of the narrowest standard window that shows the ROI's tissue
(at least STEP_BUDGET steps of an integer image); for any other image, the paper's 4/255 of the robust range.
Whatever the form, it is resolved per study to the one number the networks use: epsilon as a fraction of the
robust range. No torch, no numpy here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

from .errors import InputError

FRACTION = "fraction"
# Suffixes of a budget in the image's own units: HU for CT, "units" for any other modality (MR, microscopy).
NATIVE_UNITS = ("HU", "units")
# The study's own 0.5-99.5 percentile range: the window of an MR, and the default for every image.
ROBUST = "robust"
# The standard CT reading windows, (level, width) in HU (Radiopaedia, "Windowing (CT)"): the one table of them. The
# default budget of a CT, the report's visibility per window, the preview and the Slicer Compare view all use it.
WINDOW_PRESETS = {"soft-tissue": (40.0, 400.0), "lung": (-600.0, 1500.0), "bone": (400.0, 1800.0),
                  "brain": (40.0, 80.0)}
# Grey levels of an 8-bit display of a window; one of them is the smallest change a screen can show.
GREY_LEVELS = 255
GREY_LEVEL = 1.0 / GREY_LEVELS
# An integer image changes by whole steps, its change truncated towards zero (intensity.add_perturbation): a default
# budget below a step would change nothing, so it is raised to this many steps, which changes a voxel by one step
# where the fitted perturbation asks for at least two thirds of the budget, and never by more.
STEP_BUDGET = 1.5
# How a study is read (method/modality.py): told by its intensities, or said to be a CT in HU or another image.
MODALITIES = ("auto", "ct", "other")
# The paper's budget: the default of any image that is not a CT in HU, as a fraction of its robust range.
PAPER_EPSILON = 4 / GREY_LEVELS


def _number(text: str, what: str) -> float:
    """A fraction ("4/255") or a decimal ("0.0157", "1e-2") as a float; too large is +-inf, never an overflow.

    Floats, not Fraction: Fraction("1e999999999") would build a billion-digit integer.
    """
    try:
        values = [float(part) for part in text.strip().split("/")]
    except ValueError:
        values = []
    if len(values) == 1:
        value = values[0]
    elif len(values) == 2 and values[1] != 0:
        value = values[0] / values[1]
    else:
        value = math.nan
    if math.isnan(value):
        raise InputError(f"{what} {text.strip()!r} is not a number; write it as 4/255, 0.0157 or 10HU")
    return value


def check_epsilon(value: float) -> float:
    """Refuse a fraction outside (0, 1]: it is a share of a window."""
    if not 0.0 < value <= 1.0:
        raise InputError(f"epsilon {value:g} is outside (0, 1]; typical values are 2/255 to 16/255")
    return float(value)


def check_native(value: float, unit: str) -> float:
    """Refuse a native amount that is not a positive, finite number."""
    if not 0.0 < value < math.inf:
        raise InputError(f"epsilon {value:g} {unit} must be a positive amount, e.g. 10{unit}")
    return float(value)


def check_amount(value: float, unit: str) -> float:
    """Check an amount in its unit: a fraction in (0, 1], a native amount above 0."""
    if unit == FRACTION:
        return check_epsilon(value)
    if unit not in NATIVE_UNITS:
        raise InputError(f"budget unit {unit!r} is unknown; use a fraction or one of {', '.join(NATIVE_UNITS)}")
    return check_native(value, unit)


def parse_epsilon(text: str) -> float:
    """Read a budget that must be a fraction ("4/255") or a decimal ("0.0157")."""
    return check_epsilon(_number(text, "epsilon"))


def parse_budget(text: str) -> Tuple[float, str]:
    """Read a budget: "4/255" or "0.0157" (a fraction of the window), "10HU" or "2.5units" (native units)."""
    stripped = text.strip()
    for unit in NATIVE_UNITS:
        if stripped.lower().endswith(unit.lower()):
            amount = stripped[:-len(unit)]
            if "/" in amount:  # 4/255HU would be 0.0157 HU: a fraction is of a window, an amount in units is not
                raise InputError(f"epsilon {stripped!r} mixes a fraction with a unit; give a fraction of the window "
                                 f"({amount.strip()}) or an amount in the image's units (e.g. 10{unit})")
            return check_native(_number(amount, "epsilon"), unit), unit
    return parse_epsilon(stripped), FRACTION


def format_budget(amount: float, unit: str) -> str:
    """The text parse_budget reads back as exactly this amount: "4/255" on the grey-level grid, "10HU", "0.0157"."""
    if unit != FRACTION:
        return f"{amount!r}{unit}"
    levels = round(amount * GREY_LEVELS)
    return f"{levels}/{GREY_LEVELS}" if levels / GREY_LEVELS == amount else repr(amount)


def parse_window(text: str) -> str:
    """Read a reading window: "level,width" (e.g. "40,400", "-600,1500") or a preset name; returns its usual form."""
    if not isinstance(text, str):  # a profile is someone else's file: its window may be any JSON value
        raise InputError(f"window {text!r} must be text: level,width (e.g. 40,400) or a preset name")
    name = text.strip().lower()
    if name == ROBUST or name in WINDOW_PRESETS:
        return name
    refusal = InputError(f"--window {text.strip()!r} must be level,width with a width above 0 (e.g. 40,400) or "
                         f"one of {', '.join((*WINDOW_PRESETS, ROBUST))}")
    parts = name.split(",")
    if len(parts) != 2:
        raise refusal
    try:
        level, width = (_number(part, "window value") for part in parts)
    except InputError:
        raise refusal from None
    if not (math.isfinite(level) and 0.0 < width < math.inf):
        raise refusal
    return f"{level:.10g},{width:.10g}"


@dataclass(frozen=True)
class ReadingWindow:
    """A grey-level window: `level` is its centre, `width` its extent, in native units."""

    name: str
    level: float
    width: float

    @property
    def low(self) -> float:
        """The value shown black."""
        return self.level - self.width / 2.0

    @property
    def high(self) -> float:
        """The value shown white."""
        return self.level + self.width / 2.0

    def describe(self) -> str:
        """E.g. "soft-tissue window (L40 W400)"."""
        return f"{self.name} window (L{self.level:.4g} W{self.width:.4g})"

    def to_dict(self) -> dict:
        """Plain JSON-able form, with its black and white values."""
        return {"name": self.name, "level": self.level, "width": self.width, "low": self.low, "high": self.high}


def standard_windows() -> Tuple[ReadingWindow, ...]:
    """The standard CT windows of WINDOW_PRESETS, narrowest first."""
    return tuple(sorted((ReadingWindow(name, *shape) for name, shape in WINDOW_PRESETS.items()),
                        key=lambda window: window.width))


@dataclass(frozen=True)
class StudyReading:
    """How a study is read: as a CT in HU or not (method/modality.py says how that is told), the ROI's median value
    and the image's smallest step (1 for integer voxels, 0 for floating point), and which rule told it and why."""

    ct: bool
    roi_median: float
    step: float
    rule: str = "given"  # method/modality.py's rule: "given" (--modality), "header" or "air"
    reason: str = ""

    @property
    def covering(self) -> Tuple[ReadingWindow, ...]:
        """The standard windows that show the ROI's tissue (its median lies inside them), narrowest first; CT only."""
        return tuple(w for w in standard_windows() if w.low <= self.roi_median <= w.high) if self.ct else ()

    def to_dict(self) -> dict:
        """Plain JSON-able form, with the covering windows' names."""
        return {"ct_in_hu": self.ct, "rule": self.rule, "reason": self.reason, "roi_median": self.roi_median,
                "step": self.step, "covering_windows": [w.name for w in self.covering]}


def reading_window(spec: Optional[str], robust_low: float, robust_high: float) -> ReadingWindow:
    """The window a spec names for a study whose robust range is [robust_low, robust_high] (None = that range)."""
    name = parse_window(spec) if spec is not None else ROBUST
    if name == ROBUST:
        return ReadingWindow("robust range", (robust_low + robust_high) / 2.0, robust_high - robust_low)
    if name in WINDOW_PRESETS:
        return ReadingWindow(name, *WINDOW_PRESETS[name])
    level, width = (float(part) for part in name.split(","))
    return ReadingWindow("given", level, width)


@dataclass(frozen=True)
class ResolvedBudget:
    """A budget for one study: what the networks use, what it is in native units and in the reading window."""

    epsilon: float  # fraction of the study's robust range
    native: float  # the same in native units (e.g. HU)
    window: ReadingWindow
    given: str  # how the user gave it, e.g. "4/255 of the soft-tissue window (L40 W400)"

    @property
    def of_window(self) -> float:
        """The budget as a share of the reading window."""
        return self.native / self.window.width

    def check_changes(self, step: float, reading: Optional[StudyReading] = None) -> None:
        """Refuse a budget below `step`, the smallest change the image's values can hold: it would change nothing.

        A default budget follows the study's reading, so the refusal says how the study was read: a CT the air rule
        missed gets this refusal, and the way out is --modality ct, not a budget picked by hand.
        """
        if self.native < step:
            read = "" if reading is None else (f" (the study was read as {'a' if reading.ct else 'not a'} CT in HU: "
                                               f"{reading.reason})")
            raise InputError(f"the budget ({self.given}) is {self.native:.3g} in the image's units, less than the "
                             f"smallest change its values can hold ({step:.3g}), so nothing would change; choose a "
                             f"larger one{read}")


def _default_budget(window: Optional[str], robust_low: float, robust_high: float,
                    reading: Optional[StudyReading]) -> Tuple[float, ReadingWindow, str]:
    """The budget nobody gave: (native amount, its window, how it came about), as the module's docstring says."""
    covering = reading.covering if reading is not None else ()
    if not covering:
        shown = reading_window(window, robust_low, robust_high)
        return PAPER_EPSILON * shown.width, shown, f"the default 4/255 of the {shown.describe()}"
    shown = reading_window(window, robust_low, robust_high) if window is not None else covering[0]
    native = max(shown.width * GREY_LEVEL, STEP_BUDGET * reading.step)
    given = f"the default for a CT in HU: one grey level of the {shown.describe()}"
    if native > shown.width * GREY_LEVEL:
        given += (f", raised to {STEP_BUDGET:g} steps of this integer image ({native:g} HU: changes of at most "
                  f"{reading.step:g} HU; a smaller budget would change nothing)")
    return native, shown, given


def resolve_budget(amount: Optional[float], unit: str, window: Optional[str], robust_low: float,
                   robust_high: float, reading: Optional[StudyReading] = None) -> ResolvedBudget:
    """Turn a budget (amount in its unit, optional window; None: the default for this reading of the study) into
    epsilon on this study's robust range."""
    if amount is None:
        return _checked(*_default_budget(window, robust_low, robust_high, reading), robust_low, robust_high)
    check_amount(amount, unit)
    shown = reading_window(window, robust_low, robust_high)
    if unit == FRACTION:
        native = amount * shown.width
        given = f"{amount * 255:.4g}/255 of the {shown.describe()}"
    else:
        native = amount
        given = f"{amount:g} {unit}"
    return _checked(native, shown, given, robust_low, robust_high)


def _checked(native: float, shown: ReadingWindow, given: str, robust_low: float, robust_high: float) -> ResolvedBudget:
    """The resolved budget, refused when it is more than the study's whole robust range."""
    epsilon = native / (robust_high - robust_low)
    if not 0.0 < epsilon <= 1.0:
        raise InputError(f"the budget {given} is {native:.4g} native units, more than this image's whole robust "
                         f"intensity range ({robust_low:.4g} to {robust_high:.4g}); choose a smaller one")
    return ResolvedBudget(epsilon, native, shown, given)
