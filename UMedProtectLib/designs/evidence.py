"""What a design was measured to do against victims, and the threat model it supports, for every report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Optional, Sequence

# A victim counts as defeated when its best seed scores at most this Dice while its clean twin reaches CLEAN_DSC.
DEFEATED_DSC = 0.10
CLEAN_DSC = 0.70
# victims' augmentation: none, random flips only, flips+rotation+scale+intensity, nnU-Net's own default pipeline
LEVELS = ("none", "flip", "full", "nnunet")
# A defence of the attacker breaks a design where victims keep more than this share of their clean twin's Dice.
BROKEN_SHARE = 1 / 3


@dataclass(frozen=True)
class Measurement:
    """One measured row: victims trained at an augmentation level on a corpus, clean twin and protected (best seeds)."""

    augmentation: str
    corpus: str
    epsilon_255: float
    epsilon_over_contrast: Optional[float]  # the budget relative to the target's own contrast, where known
    victims: str
    clean_dsc: float
    protected_dsc: float
    psnr_db: float
    source: str  # the docs page (a path in the repository) with the command that reproduces it
    defence: str = "none"  # the attacker's preprocessing of every image (evaluation/defences.py)
    seeds: Optional[int] = None  # seeds per victim family; both Dice figures are the best of them
    commit: Optional[str] = None  # the commit that recorded the figures
    machine: Optional[str] = None  # where the victims were trained, as the docs page states it
    date: Optional[str] = None  # YYYY-MM-DD of that commit

    @property
    def defeats(self) -> bool:
        """Whether the protection made the victims fail while the clean twin worked."""
        return self.clean_dsc >= CLEAN_DSC and self.protected_dsc <= DEFEATED_DSC

    @property
    def broken(self) -> bool:
        """Whether victims kept more than BROKEN_SHARE of their clean twin's Dice (which worked) under a defence."""
        return self.clean_dsc >= CLEAN_DSC and self.protected_dsc > BROKEN_SHARE * self.clean_dsc


def _broken_sentence(broken: Sequence[Measurement]) -> str:
    """The sentence naming the attacker's defences measured to break the design (rows `broken`), or ''."""
    if not broken:
        return ""
    names = sorted({m.defence for m in broken})
    where = sorted({f"{m.victims}, {m.corpus}" for m in broken})
    return (f" The attacker's preprocessing {', '.join(names)} of every image left victims above a third of their "
            f"clean Dice ({'; '.join(where)}).")


def threat_model(design_name: str, measurements: Sequence[Measurement]) -> Dict:
    """The report's `threat_model` entry: the augmentation levels defeated, the defences that break the design, the
    evidence and one sentence."""
    defeated = [level for level in LEVELS if any(m.defeats for m in measurements if m.augmentation == level)]
    tried = [level for level in LEVELS if any(m.augmentation == level for m in measurements)]
    if defeated:
        where = sorted({f"{m.victims}, {m.corpus}" for m in measurements if m.defeats})
        others = ", ".join(level for level in LEVELS if level not in defeated)
        sentence = (f"Design '{design_name}' was measured to defeat victims trained with augmentation "
                    f"{', '.join(defeated)} ({'; '.join(where)}); it is not demonstrated for other victims or "
                    f"targets" + (f", nor at augmentation {others}." if others else "."))
    elif tried:
        # A partial effect is worth stating, but never as protection.
        strongest = max((m for m in measurements if m.clean_dsc >= CLEAN_DSC),
                        key=lambda m: m.clean_dsc - m.protected_dsc, default=None)
        effect = (f"; its largest measured effect: Dice {strongest.clean_dsc:.2f} -> {strongest.protected_dsc:.2f} "
                  f"({strongest.victims}, {strongest.corpus}, augmentation {strongest.augmentation})"
                  if strongest is not None and strongest.clean_dsc - strongest.protected_dsc >= 0.05 else "")
        sentence = (f"Design '{design_name}' has not been measured to defeat any victim (tried: augmentation "
                    f"{', '.join(tried)}){effect}; treat the protection as not demonstrated.")
    else:
        sentence = f"Design '{design_name}' has not been evaluated against victims; treat the protection as unproven."
    broken = [m for m in measurements if m.defence != "none" and m.broken]
    return {"design": design_name, "defeats_augmentation": defeated,
            "broken_by_defences": sorted({m.defence for m in broken}),
            "criterion": f"best-seed Dice <= {DEFEATED_DSC} with the clean twin >= {CLEAN_DSC}",
            "summary": sentence + _broken_sentence(broken), "measurements": [asdict(m) for m in measurements]}
