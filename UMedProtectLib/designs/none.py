"""No protection perturbation: nothing is fitted, and the only change is the owner's keyed mark (--mark)."""

from .design import Design

NONE = Design(
    name="none",
    description="no protection perturbation, only the keyed mark of --mark, which then takes the whole budget",
    plain="no protection: only your keyed mark (--mark), which lets you prove training afterwards",
    build=None,
)
