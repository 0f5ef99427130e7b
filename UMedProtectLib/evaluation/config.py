"""What an evaluation runs: corpora, victims, seeds, methods, epsilons and the victim recipe; full and quick presets."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Optional, Tuple

from ..designs import DESIGNS
from .augmentation import LEVELS
from .nnunet_victim import NnUNetRecipe
from .umed import UMED_MODES
from .victim_training import Recipe

CORPORA = ("mni-wm", "mni-gm", "mni-csf", "nuclei", "nuclei-3d", "synth-organ", "synth-lesion", "synth-contrast",
           "synth-faint", "ct-faint")
BASELINES = ("gaussian", "checker", "lsp", "ar", "em-pgd")
# "umed-<mode>" uses the engine's default design; "umed-<design>-<mode>" names a design (settings.DESIGNS).
UMED = tuple(UMED_MODES) + tuple(f"umed-{design}-{mode[len('umed-'):]}" for design in DESIGNS for mode in UMED_MODES)
METHODS = BASELINES + UMED


@dataclass(frozen=True)
class EvaluationConfig:
    """Every choice of a run; stored in the JSON so that a number can be traced to what produced it."""

    corpora: Tuple[str, ...] = ("mni-wm", "nuclei", "synth-organ")
    dataset: Optional[str] = None  # the owner's own data (DIR_OR_CSV, as fit-profile reads it): an extra corpus
    augmentations: Tuple[str, ...] = LEVELS  # the victims' threat levels; each has its own clean twin
    defences: Tuple[str, ...] = ("none",)  # the attacker's preprocessing of every image (defences.py); an axis too
    victims: Tuple[str, ...] = ("unet", "attention-unet", "fpn")
    seeds: Tuple[int, ...] = (0, 1, 2)
    methods: Tuple[str, ...] = BASELINES + UMED[:3] + ("umed-carrier-dataset",)
    epsilon: float = 4 / 255  # the table's budget (the engine's default)
    sweep: Tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255, 16 / 255)
    sweep_methods: Tuple[str, ...] = ("em-pgd", "umed-dataset", "umed-carrier-dataset")
    band_width: int = 3
    recipe: Recipe = field(default_factory=Recipe)
    nnunet: NnUNetRecipe = field(default_factory=NnUNetRecipe)  # the nnU-Net victims' training length
    em_pgd_rounds: int = 10
    em_pgd_surrogate_steps: int = 20
    em_pgd_steps: int = 10
    umed_preset: str = "balanced"
    umed_iterations: Optional[int] = None
    transfer_fraction: float = 0.5
    device: str = "auto"
    threads: int = 0  # 0 = leave torch's default
    quick: bool = False

    def with_changes(self, **changes) -> "EvaluationConfig":
        """A copy with some fields changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain JSON-able form (epsilons also as n/255)."""
        data = asdict(self)
        data["epsilon_255"] = round(self.epsilon * 255, 3)
        data["sweep_255"] = [round(e * 255, 3) for e in self.sweep]
        return data


def full_config() -> EvaluationConfig:
    """The full run of docs/evaluation.md (hours on a CPU, minutes on a GPU)."""
    return EvaluationConfig()


def quick_config() -> EvaluationConfig:
    """CI: the nuclei image (real data, where nothing protects) and the faint lesions (where the default design takes
    effect), one victim, one seed, no augmentation, 4/255, the default preset; a few minutes on 2 CPU cores."""
    return EvaluationConfig(
        corpora=("nuclei", "synth-faint"), augmentations=("none",), victims=("unet",), seeds=(0,),
        methods=("gaussian", "em-pgd", "umed-dataset"),
        sweep=(), sweep_methods=(), recipe=Recipe(steps=150, curve_points=5),
        em_pgd_rounds=4, em_pgd_surrogate_steps=15, em_pgd_steps=5, quick=True,
    )
