"""The quiet design: the ROI's noise removed within the budget (a texture shortcut), a fitted contour part outside."""

from .design import Design
from .evidence import Measurement

_PROBE = "README, Measured: the quiet design (benchmarks/noise_shortcut_probe.py)"


def _build(settings):
    from ..quiet_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta)


QUIET = Design(
    name="quiet",
    description="the ROI's own noise removed within the budget (blur minus image, clamped), CDC contour part on the "
                "outer band fitted error-minimising: victims learn the missing noise instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
    measurements=(
        Measurement("none", "synthetic faint lesions, contrast 2.5 x epsilon, noise epsilon", 4, 0.4, "U-Net x 1 seed",
                    0.839, 0.041, 45.4, _PROBE),
        Measurement("none", "synthetic faint lesions, contrast 2.5 x epsilon, noise epsilon", 4, 0.4,
                    "attention U-Net x 1 seed", 0.795, 0.145, 45.4, _PROBE),
        Measurement("none", "synthetic faint lesions, contrast 2.5 x epsilon, noise epsilon", 4, 0.4, "FPN x 1 seed",
                    0.749, 0.166, 45.4, _PROBE),
        Measurement("flip", "synthetic faint lesions, contrast 2.5 x epsilon, noise epsilon", 4, 0.4, "U-Net x 1 seed",
                    0.868, 0.058, 45.4, _PROBE),
        Measurement("none", "synth-contrast (1x-8x epsilon mixed in one training set)", 4, None, "U-Net x 1 seed",
                    0.774, 0.760, 50.7, "README, Measured: the contrast ladder"),
    ),
)
