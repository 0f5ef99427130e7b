"""The quiet design's perturbation: the ROI's own noise removed within the budget, a fitted CDC contour part outside.

A victim trained on such images can tell the target by its missing noise, a local-variance cue far stronger than a
low contrast; on real (noisy) images that cue is absent and the victim misses the target (README, "Does it protect?").
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .networks.encoder_decoder import EncoderDecoder, cdc_conv


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
    """delta = eps*tanh(G_c(x))*band + clamp(blur(x) - x, -eps, eps)*interior (interior = the whole ROI)."""

    def __init__(self, width: int = 16, cdc_theta: float = 0.7, sigma: float = 1.5):
        super().__init__()
        self.contour = EncoderDecoder(1, 1, width=width, depth=2, encoder_conv=cdc_conv(cdc_theta))
        self.sigma = sigma

    def forward(self, x: torch.Tensor, band: torch.Tensor, interior: torch.Tensor, epsilon: float) -> torch.Tensor:
        """The perturbation for images x (N,1,H,W) in [0,1]; zero outside band and interior."""
        contour = epsilon * torch.tanh(self.contour(x)) * band
        quiet = torch.clamp(gaussian_blur(x, self.sigma) - x, -epsilon, epsilon)
        return contour + quiet * interior
