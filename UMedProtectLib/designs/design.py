"""What a design is: how its perturbation is built, which masks it uses and how it is fitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

from .evidence import Measurement, threat_model

if TYPE_CHECKING:  # torch stays out of the import of the registry, so settings can list designs cheaply
    from torch import nn

    from ..settings import ProtectSettings


@dataclass(frozen=True)
class Design:
    """A named perturbation design; `build` makes its (untrained) perturbation module for the settings (None: the
    design changes nothing by itself, as `none` with only a mark)."""

    name: str
    description: str  # in the method's terms (docs/method.md)
    plain: str  # in a reader's words, for the --design help
    build: Optional[Callable[["ProtectSettings"], "nn.Module"]]
    whole_roi_inside: bool = False  # texture part up to the contour, contour part on the outer half of the band
    fit_through_augmentation: bool = False  # the surrogate sees protected patches through a victim's augmentations
    surrogate_every: Optional[int] = None  # overrides settings.surrogate_every when set
    # What victims did on data protected with it: its rows of designs/measured/ (docs/results/ has the runs).
    measurements: Tuple[Measurement, ...] = ()

    def threat_model(self) -> Dict:
        """The report's `threat_model` entry for this design (designs/evidence.py); a design that changes nothing
        claims no protection."""
        model = threat_model(self.name, self.measurements)
        if self.build is None:
            model["summary"] = (f"Design '{self.name}' adds no protection perturbation: a network trained on these "
                                "studies is not hindered; a keyed mark only lets its owner show afterwards, with "
                                "'umed-protect audit', that a model was trained on them (docs/audit.md).")
        return model
