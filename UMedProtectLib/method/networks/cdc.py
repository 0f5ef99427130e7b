"""Central difference convolution (Yu et al., CVPR 2020), the building block of UMed's contour generator."""

import torch
import torch.nn.functional as F
from torch import nn


class CentralDifferenceConv2d(nn.Conv2d):
    """y = conv(x) - theta * x(p0) * sum(w): a vanilla convolution blended with a gradient-like one."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, theta: float = 0.7, bias: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias)
        self.theta = float(theta)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        if self.theta == 0.0:
            return out
        # Summing the kernel over space and applying it at the centre pixel is the x(p0) * sum(w) term.
        centre_kernel = self.weight.sum(dim=(2, 3), keepdim=True)
        return out - self.theta * F.conv2d(x, centre_kernel, stride=self.stride)
