"""The quiet-rim design: the ROI's noise removed and the band's noise amplified, within the budget; nothing fitted."""

from .design import Design

RIM_GAIN = 1.5  # the band's noise x2.5 before the clamp: 45.1 dB at epsilon = noise (README, faint lesions)


def _build(settings):
    from ..quiet_perturbation import QuietPerturbation

    return QuietPerturbation(settings.generator_width, settings.cdc_theta, rim_gain=RIM_GAIN)


QUIET_RIM = Design(
    name="quiet-rim",
    description="the ROI's own noise removed and the outer band's noise amplified within the budget, hand-made "
                "(no fitting): a quiet target inside a loud rim, a noise contrast victims learn instead of the anatomy",
    build=_build,
    whole_roi_inside=True,
)
