"""The quiet design: the ROI's noise removed within the budget (a texture shortcut), a fitted contour part outside."""

from .design import Design
from .evidence import MIXED_CONTRAST, Measurement, faint_ladder


def _build(settings):
    from ..method.denoising_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta)


QUIET = Design(
    name="quiet",
    description="the ROI's own noise removed within the budget (blur minus image, clamped), CDC contour part on the "
                "outer band fitted error-minimising: victims learn the missing noise instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
    measurements=(  # per row: the victims' best seed, clean and protected (what an attacker keeps)
        *faint_ladder({("none", "U-Net"): 0.202, ("none", "attention U-Net"): 0.165, ("none", "FPN"): 0.254,
                       ("flip", "U-Net"): 0.284, ("flip", "attention U-Net"): 0.270, ("flip", "FPN"): 0.172}, 44.7),
        Measurement("none", MIXED_CONTRAST, 4, None, "U-Net x 1 seed",
                    0.774, 0.760, 50.7, "README, Measured: the contrast ladder"),
    ),
)
