"""The registry of keyed marks: adding one is a file in this folder plus one line here."""

from typing import Dict

from .grating import GRATING
from .mark import Mark
from .texture import TEXTURE

MARKS: Dict[str, Mark] = {mark.name: mark for mark in (TEXTURE, GRATING)}
DEFAULT_MARK = "texture"
