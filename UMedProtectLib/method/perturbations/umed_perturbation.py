"""UMed's perturbation: a contour part on the band (CDC generator) plus an LBP-bounded texture part inside."""

from typing import Optional

import torch
from torch import nn

from ..networks.encoder_decoder import EncoderDecoder, cdc_conv
from .texture import texture_bound


def checker_carrier(height: int, width: int, period: int, like: torch.Tensor) -> torch.Tensor:
    """+1/-1 squares of side period/2: a pattern coarse enough to survive a victim's bilinear resampling."""
    half = max(period // 2, 1)
    rows = torch.arange(height, device=like.device) // half
    cols = torch.arange(width, device=like.device) // half
    return (1.0 - 2.0 * ((rows[:, None] + cols[None, :]) % 2)).to(like.dtype)


class UMedPerturbation(nn.Module):
    """delta = eps*tanh(G_c(x))*band + texture part*interior, the texture part bounded by eps*T(x).

    Published texture part: clamp(eps*tanh(G_t(x)), -eps*T(x), eps*T(x)).
    Carrier texture part (carrier_period set): eps*sigmoid(G_t(x))*checker, the generator choosing where and how
    strongly a fixed mid-frequency pattern is laid; no LBP bound, which removed the pattern's effect
    (docs/method.md, carrier).
    """

    def __init__(self, width: int = 16, cdc_theta: float = 0.7, texture_floor: float = 0.25,
                 carrier_period: Optional[int] = None):
        super().__init__()
        self.contour = EncoderDecoder(1, 1, width=width, depth=2, encoder_conv=cdc_conv(cdc_theta))
        self.texture = EncoderDecoder(1, 1, width=width, depth=2)
        self.texture_floor = texture_floor
        self.carrier_period = carrier_period

    def forward(self, x: torch.Tensor, band: torch.Tensor, interior: torch.Tensor, epsilon: float) -> torch.Tensor:
        """The perturbation for images x (N,1,H,W) in [0,1]; zero outside band and interior."""
        contour = epsilon * torch.tanh(self.contour(x)) * band
        if self.carrier_period:
            carrier = checker_carrier(x.shape[-2], x.shape[-1], self.carrier_period, x)
            texture = epsilon * torch.sigmoid(self.texture(x)) * carrier
        else:
            bound = epsilon * texture_bound(x, self.texture_floor)
            texture = torch.maximum(torch.minimum(epsilon * torch.tanh(self.texture(x)), bound), -bound)
        return contour + texture * interior
