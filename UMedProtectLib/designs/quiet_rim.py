"""The quiet-rim design: the ROI's noise removed, the band pushed out in the sign of its own noise; nothing fitted."""

from .design import Design

RIM = 0.8  # the rim's change in epsilons: the largest that keeps 45 dB at epsilon = noise (docs/method.md, quiet-rim)


def _build(settings):
    from ..method.perturbations.denoising_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta, rim=RIM)


QUIET_RIM = Design(
    name="quiet-rim",
    description="the ROI's own noise removed within the budget, the outer band moved by 0.8 x epsilon in the sign of "
                "its own noise, hand-made (no fitting): a quiet target inside a loud rim, a contrast of noise that "
                "victims learn instead of the anatomy",
    plain="the ROI's own noise smoothed away inside a rougher rim, not fitted, so that a trainer learns that contrast "
          "of noise instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
)
