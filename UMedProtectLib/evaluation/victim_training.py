"""The victim's training recipe (the same for clean and protected data) and its prediction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..progress import CancelFlag, check_cancel
from .augmentation import augment
from .metrics import dice
from .victims import make_victim


@dataclass(frozen=True)
class Recipe:
    """How the unauthorised user trains: Adam with cosine decay, Dice + CE (the augmentation level is an axis)."""

    steps: int = 400  # optimiser steps: the same for every corpus size, so small corpora also converge
    batch_size: int = 16
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    curve_points: int = 8  # test-DSC points of the training curve


@dataclass
class TrainedVictim:
    """A trained network with its training curve."""

    model: nn.Module
    losses: List[float] = field(default_factory=list)  # mean training loss per pass over the data
    curve: List[dict] = field(default_factory=list)  # {"step", "test_dice"} at curve_points evenly spaced steps
    seconds: float = 0.0


def victim_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus (1 - soft Dice of the foreground); fixed here so that tuning the engine cannot change it."""
    probabilities = logits.softmax(dim=1)[:, 1]
    foreground = (target == 1).float()
    intersection = (probabilities * foreground).sum()
    soft_dice = (2 * intersection + 1.0) / (probabilities.sum() + foreground.sum() + 1.0)
    return F.cross_entropy(logits, target) + 1.0 - soft_dice


def predict(model: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 32) -> np.ndarray:
    """Argmax segmentation of slices (N, H, W) -> uint8 (N, H, W)."""
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = torch.from_numpy(images[start:start + batch_size]).float()[:, None].to(device)
            out.append(model(batch).argmax(1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def train_victim(name: str, images: np.ndarray, labels: np.ndarray, recipe: Recipe, seed: int,
                 device: torch.device, test: Optional[tuple] = None, augmentation: str = "full",
                 on_step: Optional[Callable[[int], None]] = None, cancel: CancelFlag = None) -> TrainedVictim:
    """Train victim `name` from scratch on slices (N, H, W) in [0, 1] with labels (N, H, W).

    The seed fixes the initial weights, the batch order and the augmentations, so a clean run and a protected
    run with the same seed differ only in their data (the "clean twin"). `augmentation` is a level of
    `augmentation.LEVELS`.
    """
    torch.manual_seed(seed)
    model = make_victim(name).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, recipe.steps)
    order_rng = np.random.default_rng(seed)
    augment_rng = torch.Generator().manual_seed(seed)
    all_images = torch.from_numpy(images.astype(np.float32))[:, None]
    all_labels = torch.from_numpy(labels.astype(np.int64))
    curve_at = set(np.linspace(recipe.steps / recipe.curve_points, recipe.steps, recipe.curve_points).astype(int))
    result = TrainedVictim(model)
    start = time.monotonic()
    step = 0
    while step < recipe.steps:
        model.train()
        order = order_rng.permutation(len(images))
        epoch_losses = []
        for first in range(0, len(order), recipe.batch_size):
            index = torch.from_numpy(order[first:first + recipe.batch_size])
            # BatchNorm cannot learn from a batch of one slice; such a remainder batch is skipped.
            if len(index) < 2 or step >= recipe.steps:
                continue
            check_cancel(cancel)
            x, y = all_images[index], all_labels[index]
            x, y = augment(x, y, augmentation, augment_rng)
            x, y = x.to(device), y.to(device)
            model.train()
            loss = victim_loss(model(x), y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            scheduler.step()
            step += 1
            epoch_losses.append(loss.item())
            if test is not None and step in curve_at:
                result.curve.append({"step": step, "test_dice": dice(predict(model, test[0], device), test[1])})
            if on_step is not None:
                on_step(step)
        result.losses.append(float(np.mean(epoch_losses)) if epoch_losses else float("nan"))
    result.seconds = time.monotonic() - start
    return result
