"""The registry of perturbation designs: adding one is a file in this folder plus one line here."""

from typing import Dict

from .carrier import CARRIER
from .design import Design
from .published import PUBLISHED
from .quiet import QUIET
from .quiet_rim import QUIET_RIM

DESIGNS: Dict[str, Design] = {design.name: design for design in (PUBLISHED, CARRIER, QUIET, QUIET_RIM)}
