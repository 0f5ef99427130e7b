"""One forward pass of the fitted generators over every ROI window."""

from typing import List

import numpy as np
import torch

from ..progress import CancelFlag, check_cancel
from .windows import Window


def window_deltas(perturbation: torch.nn.Module, windows: List[Window], epsilon: float,
                  device: torch.device, cancel: CancelFlag = None) -> List[np.ndarray]:
    """The normalised perturbation of each window, as float32 arrays of the window's size."""
    perturbation.to(device).eval()
    deltas = []
    with torch.no_grad():
        for window in windows:
            check_cancel(cancel)
            planes = [window.image, window.band, window.interior]
            image, band, interior = (torch.from_numpy(p.astype(np.float32))[None, None].to(device) for p in planes)
            deltas.append(perturbation(image, band, interior, epsilon)[0, 0].cpu().numpy())
    return deltas
