"""The quiet design: the ROI's noise removed within the budget (a texture shortcut), a fitted contour part outside."""

from .design import Design
from .evidence import FAINT_LADDER, FAINT_LESIONS, Measurement



def _build(settings):
    from ..quiet_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta)


QUIET = Design(
    name="quiet",
    description="the ROI's own noise removed within the budget (blur minus image, clamped), CDC contour part on the "
                "outer band fitted error-minimising: victims learn the missing noise instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
    measurements=(  # per row: the victims' best seed, clean and protected (what an attacker keeps)
        Measurement("none", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds", 0.843, 0.202, 44.7, FAINT_LADDER),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds", 0.796, 0.165, 44.7, FAINT_LADDER),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds", 0.759, 0.254, 44.7, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds", 0.894, 0.284, 44.7, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds", 0.833, 0.270, 44.7, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds", 0.844, 0.172, 44.7, FAINT_LADDER),
        Measurement("none", "synth-contrast (1x-8x epsilon mixed in one training set)", 4, None, "U-Net x 1 seed",
                    0.774, 0.760, 50.7, "README, Measured: the contrast ladder"),
    ),
)
