"""The design as the paper describes it: CDC contour part on the band, LBP-bounded texture part inside."""

from .design import Design
from .evidence import FAINT_LADDER, FAINT_LESIONS, FAINT_PROBE, NUCLEI_LADDER, Measurement


def _build(settings):
    from ..perturbation import UMedPerturbation

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
        Measurement("none", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds, balanced preset", 0.796, 0.431,
                    45.2, FAINT_LADDER),
        Measurement("none", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds, balanced preset", 0.759, 0.279,
                    45.2, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "U-Net x 3 seeds, balanced preset", 0.894, 0.196,
                    45.2, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "attention U-Net x 3 seeds, balanced preset", 0.833, 0.349,
                    45.2, FAINT_LADDER),
        Measurement("flip", FAINT_LESIONS, 4, 0.4, "FPN x 3 seeds, balanced preset", 0.844, 0.224,
                    45.2, FAINT_LADDER),
        Measurement("none", "synth-contrast (1x-8x epsilon mixed in one training set)", 4, None, "U-Net x 1 seed",
                    0.774, 0.753, 49.9, "README, Measured: the contrast ladder"),
        Measurement("none", "synthetic lesions, contrast 20-46/255", 4, None, "independent U-Net x 2 seeds",
                    0.970, 0.967, 54.8, "shared/research/protection-feasibility.md, 2026-11-28"),
    ),
)
