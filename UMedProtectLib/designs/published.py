"""The design as the paper describes it: CDC contour part on the band, LBP-bounded texture part inside."""

from .design import Design
from .evidence import (CONTRAST_LADDER, FAINT_LESIONS, FAINT_PROBE, MIXED_CONTRAST, NUCLEI_LADDER, SYNTH_FAINT,
                       Measurement, faint_full, faint_ladder)


def _build(settings):
    from ..method.umed_perturbation import UMedPerturbation

    return UMedPerturbation(settings.generator_width, settings.cdc_theta, settings.texture_floor)


PUBLISHED = Design(
    name="published",
    description="CDC contour part on the whole band, LBP-clamped texture part inside, fitted on unaugmented patches",
    build=_build,
    measurements=(
        Measurement("none", "nuclei", 4, 0.08, "U-Net, attention U-Net, FPN x 3 seeds", 0.932, 0.929, 44.7,
                    NUCLEI_LADDER),
        Measurement("flip", "nuclei", 4, 0.08, "U-Net, attention U-Net, FPN x 3 seeds", 0.934, 0.935, 44.7,
                    NUCLEI_LADDER),
        Measurement("full", "nuclei", 4, 0.08, "U-Net, attention U-Net, FPN x 3 seeds", 0.925, 0.926, 44.5,
                    NUCLEI_LADDER),
        Measurement("full", "mni-wm", 4, 0.08, "U-Net x 3 seeds", 0.944, 0.940, 43.8,
                    "README, Measured: MNI152 white matter"),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds, balanced preset", 0.843, 0.218,
                    45.2, FAINT_PROBE),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "U-Net x 1 seed, paper preset", 0.839, 0.309,
                    45.2, FAINT_PROBE),
        *faint_ladder({("none", "attention U-Net"): 0.431, ("none", "FPN"): 0.279, ("flip", "U-Net"): 0.196,
                       ("flip", "attention U-Net"): 0.349, ("flip", "FPN"): 0.224}, 45.2, ", balanced preset"),
        Measurement("none", MIXED_CONTRAST, 4, None,
                    "U-Net, attention U-Net, FPN x 3 seeds", 0.791, 0.753, 49.9, CONTRAST_LADDER),
        Measurement("flip", MIXED_CONTRAST, 4, None,
                    "U-Net, attention U-Net, FPN x 3 seeds", 0.853, 0.820, 50.1, CONTRAST_LADDER),
        Measurement("full", MIXED_CONTRAST, 4, None,
                    "U-Net, attention U-Net, FPN x 3 seeds", 0.849, 0.793, 50.1, CONTRAST_LADDER),
        Measurement("none", SYNTH_FAINT, 4, 0.4, "U-Net x 1 seed, 150 steps", 0.764, 0.416, 45.8,
                    "README, the quick CI test"),
        *faint_full({("full", "FPN"): 0.609}, 44.4),
        Measurement("none", "synthetic lesions, contrast 20-46/255", 4, None, "independent U-Net x 2 seeds",
                    0.970, 0.967, 54.8, "shared/research/protection-feasibility.md, 2026-11-28"),
    ),
)
