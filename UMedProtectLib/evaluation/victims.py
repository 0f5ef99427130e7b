"""The networks an unauthorised user would train: three families, none of them the engine's width-8 surrogate.

- unet: a plain U-Net of base width 16 and depth 4 (BatchNorm, ReLU), the usual default;
- attention-unet: a U-Net of width 12, depth 3, with additive attention gates on every skip (Oktay et al. 2018);
- fpn: a residual encoder with a feature-pyramid decoder and an atrous (ASPP-like) context block at the
  bottom, DeepLabV3+/FPN style: no skip concatenation, predictions from the summed pyramid.
Written here from the papers' descriptions; no pretrained weights.
"""

from __future__ import annotations

from typing import Callable, Dict, List

import torch
import torch.nn.functional as F
from torch import nn


def _conv_bn(in_channels: int, out_channels: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


def _double(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(_conv_bn(in_channels, out_channels), _conv_bn(out_channels, out_channels))


def _encoder(widths: List[int]) -> nn.ModuleList:
    """A U-Net's contracting path: double convolutions from one channel through `widths`."""
    return nn.ModuleList(_double(c_in, c_out) for c_in, c_out in zip([1] + widths[:-1], widths))


def _encode(encoder: nn.ModuleList, x: torch.Tensor) -> List[torch.Tensor]:
    """The features of every level of the contracting path, finest first (a 2x2 max-pool before each but the first)."""
    skips: List[torch.Tensor] = []
    for index, block in enumerate(encoder):
        x = block(x if index == 0 else F.max_pool2d(x, 2))
        skips.append(x)
    return skips


class PadToMultiple(nn.Module):
    """Pads the input to a multiple of the network's stride and crops the output back, so any slice size works."""

    def __init__(self, body: nn.Module, multiple: int):
        super().__init__()
        self.body = body
        self.multiple = multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = -height % self.multiple, -width % self.multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        return self.body(x)[..., :height, :width]


class UNet(nn.Module):
    """Plain U-Net: double convolutions, max-pooling, transposed-convolution upsampling, concatenated skips."""

    def __init__(self, classes: int, width: int = 16, depth: int = 4):
        super().__init__()
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.down = _encoder(widths)
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                for i in reversed(range(depth)))
        self.merge = nn.ModuleList(_double(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = _encode(self.down, x)
        x = skips.pop()
        for up, merge in zip(self.up, self.merge):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


class _AttentionGate(nn.Module):
    """Additive attention: the coarser gating signal decides which skip features pass."""

    def __init__(self, skip_channels: int, gate_channels: int, inner: int):
        super().__init__()
        self.skip = nn.Conv2d(skip_channels, inner, 1, bias=False)
        self.gate = nn.Conv2d(gate_channels, inner, 1)
        self.score = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(inner, 1, 1), nn.Sigmoid())

    def forward(self, skip: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        return skip * self.score(self.skip(skip) + self.gate(gate))


class AttentionUNet(nn.Module):
    """U-Net whose skips are filtered by attention gates driven by the upsampled decoder features."""

    def __init__(self, classes: int, width: int = 12, depth: int = 3):
        super().__init__()
        widths = [width * 2 ** level for level in range(depth + 1)]
        self.down = _encoder(widths)
        self.up = nn.ModuleList(nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                              _conv_bn(widths[i + 1], widths[i])) for i in reversed(range(depth)))
        self.gates = nn.ModuleList(_AttentionGate(widths[i], widths[i], max(widths[i] // 2, 4))
                                   for i in reversed(range(depth)))
        self.merge = nn.ModuleList(_double(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.head = nn.Conv2d(width, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = _encode(self.down, x)
        x = skips.pop()
        for up, gate, merge in zip(self.up, self.gates, self.merge):
            x = up(x)
            x = merge(torch.cat([gate(skips.pop(), x), x], dim=1))
        return self.head(x)


class _Residual(nn.Module):
    """A basic residual block (two 3x3 convolutions), strided when it downsamples."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True), nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels))
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class FPN(nn.Module):
    """Residual encoder (strides 1, 2, 4, 8), atrous context at stride 8, top-down pyramid summed to stride 1."""

    def __init__(self, classes: int, width: int = 16, pyramid: int = 32):
        super().__init__()
        widths = [width, width * 2, width * 4, width * 8]
        self.stem = _conv_bn(1, width)
        self.stages = nn.ModuleList(_Residual(c_in, c_out, 1 if i == 0 else 2)
                                    for i, (c_in, c_out) in enumerate(zip([width] + widths[:-1], widths)))
        self.context = nn.ModuleList(_conv_bn(widths[-1], widths[-1] // 2, dilation) for dilation in (1, 2, 4))
        self.context_merge = nn.Conv2d(3 * (widths[-1] // 2), widths[-1], 1)
        self.lateral = nn.ModuleList(nn.Conv2d(c, pyramid, 1) for c in widths)
        self.smooth = nn.ModuleList(_conv_bn(pyramid, pyramid) for _ in widths)
        self.head = nn.Sequential(_conv_bn(pyramid, pyramid), nn.Conv2d(pyramid, classes, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        features[-1] = features[-1] + self.context_merge(torch.cat([c(features[-1]) for c in self.context], dim=1))
        top = self.lateral[-1](features[-1])
        out = self.smooth[-1](top)
        out = F.interpolate(out, size=features[0].shape[-2:], mode="bilinear", align_corners=False)
        for level in reversed(range(len(features) - 1)):
            top = self.lateral[level](features[level]) + F.interpolate(top, size=features[level].shape[-2:],
                                                                        mode="nearest")
            out = out + F.interpolate(self.smooth[level](top), size=features[0].shape[-2:], mode="bilinear",
                                      align_corners=False)
        return self.head(out)


VICTIMS: Dict[str, Callable[[int], nn.Module]] = {
    "unet": lambda classes: PadToMultiple(UNet(classes), 16),
    "attention-unet": lambda classes: PadToMultiple(AttentionUNet(classes), 8),
    "fpn": lambda classes: PadToMultiple(FPN(classes), 8),
}


def make_victim(name: str, classes: int = 2) -> nn.Module:
    """A freshly initialised victim network (the caller seeds torch first)."""
    if name not in VICTIMS:
        raise ValueError(f"unknown victim {name!r}; choose from {', '.join(VICTIMS)}")
    return VICTIMS[name](classes)
