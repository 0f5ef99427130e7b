"""The quiet design: the ROI's noise removed within the budget (a texture shortcut), a fitted contour part outside."""

from .design import Design


def _build(settings):
    from ..method.perturbations.denoising_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta)


QUIET = Design(
    name="quiet",
    description="the ROI's own noise removed within the budget (blur minus image, clamped), CDC contour part on the "
                "outer band fitted error-minimising: victims learn the missing noise instead of the anatomy",
    plain="the ROI's own noise smoothed away and its edge nudged, so that a trainer learns the missing noise instead "
          "of the anatomy",
    build=_build,
    whole_roi_inside=True,
)
