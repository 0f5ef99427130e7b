"""The quiet designs' perturbation: the ROI's own noise removed within the budget; outside it, on the contour band,
a fitted CDC contour part (quiet) or a fixed change in the sign of the band's own noise (quiet-rim).

A victim trained on such images can tell the target by its missing noise, a local-variance cue far stronger than a
low contrast; a loud rim around the quiet ROI makes that cue stronger still. On real (noisy) images the cue is
absent and the victim misses the target (docs/method.md, the quiet design).
"""

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..networks.encoder_decoder import EncoderDecoder, cdc_conv


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian smoothing of (N,1,H,W) images with reflected borders."""
    radius = max(1, int(math.ceil(3 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    pad = min(radius, x.shape[-2] - 1, x.shape[-1] - 1)
    if pad < radius:  # reflection needs a side longer than the radius; tiny windows fall back to replication
        x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    else:
        x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    return F.conv2d(x, kernel.view(1, 1, -1, 1))


class QuietPerturbation(nn.Module):
    """delta = contour*band + clamp(blur(x) - x, -eps, eps)*interior (interior = the whole ROI).

    contour = eps*tanh(G_c(x)), fitted; or, given rim, rim*eps*sign(x - blur(x)): the band's noise pushed out to a
    fixed amplitude, with nothing to fit (the probes showed the fitted part cost PSNR and did not help: docs/method.md).
    """

    def __init__(self, width: int = 16, cdc_theta: float = 0.7, sigma: float = 1.5, rim: Optional[float] = None):
        super().__init__()
        self.contour = (None if rim is not None
                        else EncoderDecoder(1, 1, width=width, depth=2, encoder_conv=cdc_conv(cdc_theta)))
        self.sigma = sigma
        self.rim = rim

    def forward(self, x: torch.Tensor, band: torch.Tensor, interior: torch.Tensor, epsilon: float) -> torch.Tensor:
        """The perturbation for images x (N,1,H,W) in [0,1]; zero outside band and interior."""
        noise = x - gaussian_blur(x, self.sigma)
        if self.contour is None:
            contour = self.rim * epsilon * torch.sign(noise)
        else:
            contour = epsilon * torch.tanh(self.contour(x))
        return contour * band + torch.clamp(-noise, -epsilon, epsilon) * interior
