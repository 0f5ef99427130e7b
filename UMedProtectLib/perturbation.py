"""UMed's perturbation: a contour part on the band (CDC generator) plus an LBP-bounded texture part inside."""

import torch
from torch import nn

from .networks.encoder_decoder import EncoderDecoder, cdc_conv
from .texture import texture_bound


class UMedPerturbation(nn.Module):
    """delta = eps*tanh(G_c(x))*band + clamp(eps*tanh(G_t(x)), -eps*T(x), eps*T(x))*interior."""

    def __init__(self, width: int = 16, cdc_theta: float = 0.7, texture_floor: float = 0.25):
        super().__init__()
        self.contour = EncoderDecoder(1, 1, width=width, depth=2, encoder_conv=cdc_conv(cdc_theta))
        self.texture = EncoderDecoder(1, 1, width=width, depth=2)
        self.texture_floor = texture_floor

    def forward(self, x: torch.Tensor, band: torch.Tensor, interior: torch.Tensor, epsilon: float) -> torch.Tensor:
        """The perturbation for images x (N,1,H,W) in [0,1]; zero outside band and interior."""
        contour = epsilon * torch.tanh(self.contour(x)) * band
        bound = epsilon * texture_bound(x, self.texture_floor)
        texture = torch.maximum(torch.minimum(epsilon * torch.tanh(self.texture(x)), bound), -bound) * interior
        return contour + texture
