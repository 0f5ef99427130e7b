"""The design as the paper describes it: CDC contour part on the band, LBP-bounded texture part inside."""

from .design import Design


def _build(settings):
    from ..method.perturbations.umed_perturbation import UMedPerturbation

    return UMedPerturbation(settings.generator_width, settings.cdc_theta, settings.texture_floor)


PUBLISHED = Design(
    name="published",
    description="CDC contour part on the whole band, LBP-clamped texture part inside, fitted on unaugmented patches",
    plain="the paper's method, the ROI's edge band and inner texture changed, fitted to this study",
    build=_build,
)
