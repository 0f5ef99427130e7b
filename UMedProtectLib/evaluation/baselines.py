"""Baselines at the same budget and in the same region as UMed: Gaussian noise, a fixed checker, LSP, AR noise and
error-minimising PGD.

LSP (linear separable patches, Yu et al. 2022) and AR noise (autoregressive perturbations, Sandoval-Segura et al.
2022) are class-wise shortcuts of image classification; as the UMed paper adapts them to segmentation, the pixels
inside and outside the ROI are two classes: ROI pixels get class 1's pattern, the band around the ROI class 0's.

EM-PGD is the sample-wise "unlearnable examples" noise of Huang et al. (ICLR 2021) adapted to segmentation: a
surrogate U-Net and per-pixel noise both minimise the surrogate's Dice + CE loss, the noise by signed-gradient
steps projected onto the L-inf ball and the ROI + band, alternating until the surrogate's loss is near zero.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
from scipy.signal import lfilter

from ..method.masks import roi_and_band
from ..progress import CancelFlag, check_cancel
from .victim_training import victim_loss
from .victims import PadToMultiple, UNet


def gaussian_in_roi(images: np.ndarray, labels: np.ndarray, epsilon: float, band_width: int,
                    seed: int) -> Tuple[np.ndarray, Dict]:
    """x + clip(N(0, epsilon^2), -epsilon, epsilon) inside ROI + band, kept in [0, 1]."""
    rng = np.random.default_rng(seed)
    region = roi_and_band(labels > 0, band_width)
    noise = np.clip(rng.normal(0.0, epsilon, images.shape), -epsilon, epsilon) * region
    return np.clip(images + noise, 0.0, 1.0).astype(np.float32), {}


def checker_in_roi(images: np.ndarray, labels: np.ndarray, epsilon: float, period: int = 8) -> Tuple[np.ndarray, Dict]:
    """x + epsilon * checker of squares period/2 wide on the ROI alone: a hand-made shortcut, nothing learned.

    Not on the outer band: marking background voxels too blurs the shortcut's edge (measured: no effect at 16/255).
    """
    from ..method.perturbations.umed_perturbation import checker_carrier

    carrier = checker_carrier(*images.shape[1:], period, torch.zeros(())).numpy()
    protected = images + epsilon * carrier * (labels > 0)
    return np.clip(protected, 0.0, 1.0).astype(np.float32), {"period": period}


def _class_wise(images: np.ndarray, labels: np.ndarray, patterns: np.ndarray, epsilon: float,
                band_width: int) -> np.ndarray:
    """x + epsilon * (class 1's pattern on the ROI, class 0's on the band), patterns (2, N, H, W) in [-1, 1]."""
    region = roi_and_band(labels > 0, band_width)
    delta = epsilon * np.where(labels > 0, patterns[1], patterns[0]) * region
    return np.clip(images + delta, 0.0, 1.0).astype(np.float32)


def lsp_in_roi(images: np.ndarray, labels: np.ndarray, epsilon: float, band_width: int, seed: int,
               patch: int = 8) -> Tuple[np.ndarray, Dict]:
    """LSP: per class one fixed image of patch x patch squares, each a random level in [-1, 1], the same on
    every slice (linearly separable by construction), scaled to epsilon."""
    rng = np.random.default_rng(seed)
    height, width = images.shape[1:]
    levels = rng.standard_normal((2, -(-height // patch), -(-width // patch)))
    levels /= np.abs(levels).max(axis=(1, 2), keepdims=True)
    patterns = levels.repeat(patch, axis=1).repeat(patch, axis=2)[:, None, :height, :width]
    return _class_wise(images, labels, patterns, epsilon, band_width), {"patch": patch}


def ar_coefficients(rng: np.random.Generator) -> np.ndarray:
    """A causal 3x3 AR window (the bottom-right entry is the pixel generated, so 0), with sum |a| = 0.95 so that
    the process is stable and its texture is set by the coefficients alone."""
    window = rng.standard_normal((3, 3))
    window[2, 2] = 0.0
    return window * (0.95 / np.abs(window).sum())


def ar_field(window: np.ndarray, count: int, height: int, width: int, rng: np.random.Generator,
             burn_in: int = 8) -> np.ndarray:
    """`count` fields of the AR process x[i, j] = sum(window * x[i-2:i+1, j-2:j+1]) + N(0, 1), raster order.

    Row by row: the rows above are known, the two pixels to the left form a 2nd-order recursion along the row,
    which lfilter runs for all fields at once. A margin of `burn_in` rows and columns is generated and dropped.
    """
    rows, cols = height + burn_in, width + burn_in
    x = np.zeros((count, rows + 2, cols + 2))  # two rows above and two columns left stay 0: the start
    for i in range(2, rows + 2):
        drive = rng.standard_normal((count, cols))
        for r in range(2):
            for c in range(3):
                drive += window[r, c] * x[:, i - 2 + r, c:c + cols]
        x[:, i, 2:] = lfilter([1.0], [1.0, -window[2, 1], -window[2, 0]], drive, axis=-1)
    return x[:, 2 + burn_in:, 2 + burn_in:]


def ar_in_roi(images: np.ndarray, labels: np.ndarray, epsilon: float, band_width: int,
              seed: int) -> Tuple[np.ndarray, Dict]:
    """AR noise: per class one AR process; every slice gets a fresh field of each, scaled to epsilon per slice."""
    rng = np.random.default_rng(seed)
    windows = [ar_coefficients(rng) for _ in range(2)]
    patterns = np.stack([ar_field(w, *images.shape, rng) for w in windows])
    patterns /= np.abs(patterns).max(axis=(2, 3), keepdims=True)
    return _class_wise(images, labels, patterns, epsilon, band_width), {"windows": [w.tolist() for w in windows]}


def em_pgd(images: np.ndarray, labels: np.ndarray, epsilon: float, band_width: int, seed: int,
           device: torch.device, rounds: int = 10, surrogate_steps: int = 20, pgd_steps: int = 10,
           batch_size: int = 16, stop_loss: float = 0.05,
           on_round: Optional[Callable[[int, int, str], None]] = None,
           cancel: CancelFlag = None) -> Tuple[np.ndarray, Dict]:
    """Error-minimising noise: rounds of (train the surrogate on x + delta; PGD-minimise its loss over delta)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    # The same kind of surrogate as the engine's (a U-Net of width 8), so the baseline gets the same information.
    surrogate = PadToMultiple(UNet(2, width=8, depth=3), 8).to(device)
    optimiser = torch.optim.Adam(surrogate.parameters(), lr=1e-3)
    x = torch.from_numpy(images.astype(np.float32))[:, None].to(device)
    y = torch.from_numpy(labels.astype(np.int64)).to(device)
    region = torch.from_numpy(roi_and_band(labels > 0, band_width)).float()[:, None].to(device)
    delta = torch.zeros_like(x)
    step = epsilon / 4
    history = []
    for round_index in range(1, rounds + 1):
        surrogate.train()
        for _ in range(surrogate_steps):
            check_cancel(cancel)
            index = torch.from_numpy(rng.choice(len(x), size=min(batch_size, len(x)), replace=False)).to(device)
            loss = victim_loss(surrogate((x[index] + delta[index]).clamp(0, 1)), y[index])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        # eval() for the PGD steps: BatchNorm statistics must not adapt to the noise being optimised.
        surrogate.eval()
        for first in range(0, len(x), batch_size):
            check_cancel(cancel)
            part = slice(first, first + batch_size)
            d = delta[part].clone().requires_grad_(True)
            for _ in range(pgd_steps):
                loss = victim_loss(surrogate((x[part] + d).clamp(0, 1)), y[part])
                grad, = torch.autograd.grad(loss, d)
                with torch.no_grad():
                    d -= step * grad.sign()
                    d.clamp_(-epsilon, epsilon)
                    d *= region[part]
            delta[part] = d.detach()
        with torch.no_grad():
            protected_loss = float(np.mean([
                victim_loss(surrogate((x[i:i + batch_size] + delta[i:i + batch_size]).clamp(0, 1)),
                            y[i:i + batch_size]).item() for i in range(0, len(x), batch_size)]))
            clean_loss = float(np.mean([victim_loss(surrogate(x[i:i + batch_size]), y[i:i + batch_size]).item()
                                        for i in range(0, len(x), batch_size)]))
        history.append({"round": round_index, "loss_protected": protected_loss, "loss_clean": clean_loss})
        if on_round is not None:
            on_round(round_index, rounds, f"surrogate loss {protected_loss:.3f} (clean {clean_loss:.3f})")
        if protected_loss < stop_loss:
            break
    protected = (x + delta).clamp(0, 1)[:, 0].cpu().numpy().astype(np.float32)
    return protected, {"surrogate_history": history, "rounds_run": len(history)}
