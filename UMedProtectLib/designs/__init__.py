"""The registry of perturbation designs: adding one is a file in this folder plus one line here."""

from dataclasses import replace
from typing import Dict

from .carrier import CARRIER
from .design import Design
from .measured import measured_rows
from .none import NONE
from .published import PUBLISHED
from .quiet import QUIET
from .quiet_rim import QUIET_RIM

# Each design's evidence is kept as data (designs/measured/), never in its file.
DESIGNS: Dict[str, Design] = {design.name: replace(design, measurements=measured_rows(design.name))
                              for design in (PUBLISHED, CARRIER, QUIET, QUIET_RIM, NONE)}
