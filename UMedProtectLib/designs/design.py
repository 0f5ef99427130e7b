"""What a design is: how its perturbation is built, which masks it uses and how it is fitted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Tuple

from .evidence import Measurement

if TYPE_CHECKING:  # torch stays out of the import of the registry, so settings can list designs cheaply
    from torch import nn

    from ..settings import ProtectSettings


@dataclass(frozen=True)
class Design:
    """A named perturbation design; `build` makes its (untrained) perturbation module for the settings."""

    name: str
    description: str  # in the method's terms (docs/method.md)
    plain: str  # in a reader's words, for the --design help
    build: Callable[["ProtectSettings"], "nn.Module"]
    whole_roi_inside: bool = False  # texture part up to the contour, contour part on the outer half of the band
    fit_through_augmentation: bool = False  # the surrogate sees protected patches through a victim's augmentations
    surrogate_every: Optional[int] = None  # overrides settings.surrogate_every when set
    # What victims did on data protected with it: its rows of designs/measured/ (docs/results/ has the runs).
    measurements: Tuple[Measurement, ...] = ()
