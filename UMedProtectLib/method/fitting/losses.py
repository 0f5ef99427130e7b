"""The segmentation loss that both players of the min-min game minimise: soft Dice plus cross-entropy."""

import torch
import torch.nn.functional as F


def dice_ce_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """Cross-entropy plus (1 - mean soft Dice over the foreground classes); target holds class indices."""
    num_classes = logits.shape[1]
    probabilities = logits.softmax(dim=1)
    one_hot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).to(probabilities.dtype)
    dims = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(dims)
    total = probabilities.sum(dims) + one_hot.sum(dims)
    dice = (2 * intersection + smooth) / (total + smooth)
    return F.cross_entropy(logits, target) + 1.0 - dice[1:].mean()
