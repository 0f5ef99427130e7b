"""A U-shaped encoder-decoder with skip connections; one class serves as both generators and the surrogate."""

from functools import partial
from typing import Callable

import torch
from torch import nn

ConvFactory = Callable[[int, int], nn.Module]


def plain_conv(in_channels: int, out_channels: int) -> nn.Module:
    """A 3x3 convolution that keeps the spatial size."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)


def cdc_conv(theta: float) -> ConvFactory:
    """A factory of 3x3 central difference convolutions with the given theta."""
    from .cdc import CentralDifferenceConv2d

    return partial(CentralDifferenceConv2d, kernel_size=3, padding=1, theta=theta)


def _block(conv: ConvFactory, in_channels: int, out_channels: int) -> nn.Sequential:
    # GroupNorm rather than BatchNorm: batches are small and training and inference must behave the same.
    groups = min(4, out_channels)
    return nn.Sequential(
        conv(in_channels, out_channels), nn.GroupNorm(groups, out_channels), nn.LeakyReLU(0.1, inplace=True),
        plain_conv(out_channels, out_channels), nn.GroupNorm(groups, out_channels), nn.LeakyReLU(0.1, inplace=True),
    )


class EncoderDecoder(nn.Module):
    """U-Net: `depth` poolings, widths doubling per level; the encoder's first convolution comes from `encoder_conv`."""

    def __init__(self, in_channels: int = 1, out_channels: int = 1, width: int = 16, depth: int = 2,
                 encoder_conv: ConvFactory = plain_conv):
        super().__init__()
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.encoders = nn.ModuleList(
            _block(encoder_conv, c_in, c_out) for c_in, c_out in zip([in_channels] + widths[:-1], widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.upsamples = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2) for level in reversed(range(depth))
        )
        self.decoders = nn.ModuleList(
            _block(plain_conv, 2 * widths[level], widths[level]) for level in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], out_channels, 1)
        self.divisor = 2 ** depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for upsample, decoder in zip(self.upsamples, self.decoders):
            x = decoder(torch.cat([upsample(x), skips.pop()], dim=1))
        return self.head(x)
