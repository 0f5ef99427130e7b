"""The settings of a protection run, with the presets the panel and the command line offer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Optional, Tuple

from .budget import FRACTION, ResolvedBudget, check_amount, parse_epsilon, parse_window, resolve_budget
from .designs import DESIGNS, Design
from .errors import InputError

__all__ = ["DESIGNS", "DEVICES", "PRESETS", "ProtectSettings", "parse_epsilon", "parse_labels"]


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


# The cheap presets are this project's (README "Choices where the paper is silent"); `paper` is the published
# generation budget: 100 epochs over the data, Adam 1e-4 for generators and surrogate, no early stop.
PRESETS = {
    "fast": Preset(iterations=60),
    "balanced": Preset(iterations=150),
    "thorough": Preset(iterations=600),
    "paper": Preset(epochs=100, learning_rate=1e-4, stop_early=False),
}
DEVICES = ("auto", "cpu", "cuda", "mps")


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


@dataclass(frozen=True)
class ProtectSettings:
    """Everything that decides a protection run; stored in reports and profiles."""

    # The budget: a fraction of the reading window (the robust range unless `window` names another), or an
    # amount in native units when epsilon_unit is "HU" or "units" (budget.py); resolved per study by for_study.
    epsilon: float = 4 / 255
    epsilon_unit: str = FRACTION
    window: Optional[str] = None
    design: str = "published"
    carrier_period: int = 8
    band_width: int = 3
    labels: Optional[Tuple[int, ...]] = None
    preset: str = "balanced"
    iterations: Optional[int] = None
    epochs: Optional[int] = None
    surrogate_every: int = 5
    loss_threshold: float = 0.02
    batch_size: int = 16
    patch_size: int = 64
    margin: int = 8
    texture_floor: float = 0.25
    cdc_theta: float = 0.7
    generator_width: int = 16
    surrogate_width: int = 8
    learning_rate: Optional[float] = None  # None: the preset's
    percentiles: Tuple[float, float] = field(default=(0.5, 99.5))
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        check_amount(self.epsilon, self.epsilon_unit)
        if self.window is not None:  # stored in its usual form, so that equal windows compare equal
            object.__setattr__(self, "window", parse_window(self.window))
        if self.preset not in PRESETS:
            raise InputError(f"preset {self.preset!r} is unknown; choose one of {', '.join(PRESETS)}")
        if self.design not in DESIGNS:
            raise InputError(f"design {self.design!r} is unknown; choose one of {', '.join(DESIGNS)}")
        if self.carrier_period < 2:
            raise InputError(f"carrier period {self.carrier_period} must be at least 2 pixels")
        if self.band_width < 1:
            raise InputError(f"band width {self.band_width} must be at least 1 pixel")
        if self.iterations is not None and self.iterations < 0:
            raise InputError(f"iterations {self.iterations} must be 0 or more")
        if self.epochs is not None and self.epochs < 0:
            raise InputError(f"epochs {self.epochs} must be 0 or more")
        if self.iterations is not None and self.epochs is not None:
            raise InputError("give either iterations or epochs, not both")
        if self.learning_rate is not None and not 0.0 < self.learning_rate < 1.0:
            raise InputError(f"learning rate {self.learning_rate:g} must be in (0, 1)")
        if self.surrogate_every < 1 or self.batch_size < 1:
            raise InputError("surrogate_every and batch_size must be at least 1")
        if self.patch_size < 16 or self.patch_size % 8:
            raise InputError(f"patch size {self.patch_size} must be a multiple of 8, at least 16")
        if not 0.0 < self.texture_floor <= 1.0:
            raise InputError(f"texture floor {self.texture_floor} must be in (0, 1]")
        lo, hi = self.percentiles
        if not 0.0 <= lo < hi <= 100.0:
            raise InputError(f"percentiles {self.percentiles} must satisfy 0 <= low < high <= 100")
        if not (self.device in DEVICES or self.device.startswith("cuda:")):
            raise InputError(f"device {self.device!r} is unknown; choose auto, cpu, cuda, cuda:N or mps")

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

    def for_study(self, robust_low: float, robust_high: float) -> Tuple["ProtectSettings", ResolvedBudget]:
        """The budget resolved on a study's robust range, and settings whose epsilon is that fraction of it."""
        budget = resolve_budget(self.epsilon, self.epsilon_unit, self.window, robust_low, robust_high)
        return self.with_changes(epsilon=budget.epsilon, epsilon_unit=FRACTION, window=None), budget

    def with_changes(self, **changes) -> "ProtectSettings":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

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
