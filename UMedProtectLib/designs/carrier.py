"""This project's carrier design: a mid-frequency checker carrier over the whole ROI, fitted through augmentation."""

from .design import Design


def _build(settings):
    from ..method.perturbations.umed_perturbation import UMedPerturbation

    return UMedPerturbation(settings.generator_width, settings.cdc_theta, settings.texture_floor,
                            carrier_period=settings.carrier_period)


CARRIER = Design(
    name="carrier",
    description="texture part over the whole ROI on a mid-frequency checker carrier, no LBP bound, surrogate updated "
                "every iteration, fitted through a victim's augmentations",
    plain="a fine checker pattern over the whole ROI, fitted to survive a trainer's flips and rotations",
    build=_build,
    whole_roi_inside=True,
    fit_through_augmentation=True,
    # The published schedule left the surrogate nearly untrained (12 updates in 60 iterations): no gap to exploit.
    surrogate_every=1,
)
