"""The quiet-rim design: the ROI's noise removed, the band pushed out in the sign of its own noise; nothing fitted."""

from .design import Design
from .evidence import FAINT_LADDER, FAINT_LESIONS, NUCLEI_LADDER, Measurement

RIM = 0.8  # the rim's change in epsilons: the largest that keeps 45 dB at epsilon = noise (README, faint lesions)


def _build(settings):
    from ..quiet_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta, rim=RIM)


QUIET_RIM = Design(
    name="quiet-rim",
    description="the ROI's own noise removed within the budget, the outer band moved by 0.8 x epsilon in the sign of "
                "its own noise, hand-made (no fitting): a quiet target inside a loud rim, a contrast of noise that "
                "victims learn instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
    measurements=(  # per row: the victims' best seed, clean and protected (what an attacker keeps)
        Measurement("none", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds", 0.843, 0.273, 45.3, FAINT_LADDER),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds", 0.796, 0.399, 45.3, FAINT_LADDER),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds", 0.759, 0.314, 45.3, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds", 0.894, 0.190, 45.3, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds", 0.833, 0.344, 45.3, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds", 0.844, 0.199, 45.3, FAINT_LADDER),
        Measurement("full", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds, clean twin seed 0 only",
                    0.643, 0.162, 45.3, FAINT_LADDER),
        Measurement("full", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds, clean twin seed 0 only",
                    0.468, 0.160, 45.3, FAINT_LADDER),
        Measurement("full", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds", 0.794, 0.044, 45.3, FAINT_LADDER),
        Measurement("full", "nuclei", 4, 0.08, "U-Net x 3 seeds", 0.931, 0.888, 43.9, NUCLEI_LADDER),
    ),
)
