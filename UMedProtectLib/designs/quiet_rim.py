"""The quiet-rim design: the ROI's noise removed, the band pushed out in the sign of its own noise; nothing fitted."""

from .design import Design
from .evidence import NUCLEI_LADDER, Measurement, faint_full, faint_ladder

RIM = 0.8  # the rim's change in epsilons: the largest that keeps 45 dB at epsilon = noise (README, faint lesions)


def _build(settings):
    from ..method.denoising_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta, rim=RIM)


QUIET_RIM = Design(
    name="quiet-rim",
    description="the ROI's own noise removed within the budget, the outer band moved by 0.8 x epsilon in the sign of "
                "its own noise, hand-made (no fitting): a quiet target inside a loud rim, a contrast of noise that "
                "victims learn instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
    measurements=(  # per row: the victims' best seed, clean and protected (what an attacker keeps)
        *faint_ladder({("none", "U-Net"): 0.273, ("none", "attention U-Net"): 0.399, ("none", "FPN"): 0.314,
                       ("flip", "U-Net"): 0.190, ("flip", "attention U-Net"): 0.344, ("flip", "FPN"): 0.199}, 45.3),
        *faint_ladder({("full", "U-Net"): 0.162, ("full", "attention U-Net"): 0.160}, 45.3, ", clean twin seed 0 only"),
        *faint_ladder({("full", "FPN"): 0.044}, 45.3),
        Measurement("full", "nuclei", 4, 0.08, "U-Net x 3 seeds", 0.931, 0.888, 43.9, NUCLEI_LADDER),
        *faint_full({("full", "U-Net"): 0.144, ("full", "attention U-Net"): 0.059, ("full", "FPN"): 0.078}, 45.3),
    ),
)
