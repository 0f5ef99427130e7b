"""The error-minimising (min-min) game: generators and surrogate both minimise the surrogate's loss on x + delta."""

from typing import Callable, Dict, List, Optional

import numpy as np
import torch

from ...progress import CancelFlag, check_cancel
from ...settings import ProtectSettings
from .augment import augment_batch
from ..devices.data_parallel import data_parallel, mean_over_ranks, rank_seed
from .losses import dice_ce_loss
from ..networks.encoder_decoder import EncoderDecoder
from ..windows import SIDE_MULTIPLE, Window

StepCallback = Callable[[float, str], None]


class PatchSampler:
    """Random training patches cut from the ROI windows, as tensors (image, classes, band, interior)."""

    def __init__(self, windows: List[Window], patch_size: int, device: torch.device, seed: int):
        largest = max(max(w.image.shape) for w in windows)
        self.patch = min(patch_size, -(-largest // SIDE_MULTIPLE) * SIDE_MULTIPLE)
        self.stacks = [self._stack(w, device) for w in windows]
        self.rng = np.random.default_rng(seed)
        self.queue: List[int] = []

    def _stack(self, window: Window, device: torch.device) -> torch.Tensor:
        planes = [window.image, window.classes, window.band, window.interior]
        height, width = window.image.shape
        pad = ((0, max(self.patch - height, 0)), (0, max(self.patch - width, 0)))
        planes = [np.pad(p.astype(np.float32), pad, mode="edge" if i == 0 else "constant")
                  for i, p in enumerate(planes)]
        return torch.from_numpy(np.stack(planes)).to(device)

    def batch(self, size: int):
        """size random patches, the windows drawn in successive random permutations (so an epoch sees each once).

        Returns images (N,1,P,P), classes (N,P,P) int64, band and interior (N,1,P,P).
        """
        while len(self.queue) < size:
            self.queue += self.rng.permutation(len(self.stacks)).tolist()
        chosen, self.queue = self.queue[:size], self.queue[size:]
        patches = []
        for index in chosen:
            stack = self.stacks[index]
            y = int(self.rng.integers(stack.shape[1] - self.patch + 1))
            x = int(self.rng.integers(stack.shape[2] - self.patch + 1))
            patches.append(stack[:, y:y + self.patch, x:x + self.patch])
        batch = torch.stack(patches)
        return batch[:, 0:1], batch[:, 1].long(), batch[:, 2:3], batch[:, 3:4]


def make_surrogate(num_classes: int, settings: ProtectSettings) -> EncoderDecoder:
    """The surrogate segmentation U-Net F_s that the perturbation is fitted against."""
    return EncoderDecoder(1, num_classes, width=settings.surrogate_width, depth=3)


def fit_perturbation(perturbation: torch.nn.Module, windows: List[Window], num_classes: int,
                     settings: ProtectSettings, epsilon: float, device: torch.device, batch_size: int,
                     on_step: Optional[StepCallback] = None, cancel: Optional[CancelFlag] = None) -> Dict:
    """Train the generators (every iteration, at `epsilon` of the robust range) and the surrogate (every k-th) on
    the windows; return the log."""
    schedule = settings.schedule
    if schedule.epochs is not None:  # an epoch is one pass over the slices, so a batch holds at most all of them
        batch_size = min(batch_size, len(windows))
    per_epoch = -(-len(windows) // batch_size)
    sampler = PatchSampler(windows, settings.patch_size, device, rank_seed(settings.seed))
    if not any(parameter.requires_grad for parameter in perturbation.parameters()):
        # A hand-made design (quiet-rim) has no parameters: nothing to fit, no surrogate to train against.
        perturbation.to(device).eval()
        return _fit_log(0, 0, per_epoch, schedule.learning_rate, sampler.patch, batch_size, [])
    iterations = settings.training_iterations(len(windows), batch_size)
    surrogate = data_parallel(make_surrogate(num_classes, settings).to(device))
    generators = data_parallel(perturbation.to(device).train())  # under torchrun: DDP, gradients averaged
    generator_optimiser = torch.optim.Adam(perturbation.parameters(), lr=schedule.learning_rate)
    surrogate_optimiser = torch.optim.Adam(surrogate.parameters(), lr=schedule.learning_rate)
    design = settings.design_spec
    # Fitting through a victim's ordinary augmentations makes the fitted shortcut one that survives flips,
    # resampling and intensity jitter (expectation over them).
    augment = torch.Generator().manual_seed(settings.seed) if design.fit_through_augmentation else None
    surrogate_every = design.surrogate_every or settings.surrogate_every
    # Epoch schedules log once per epoch (the paper's unit); iteration schedules 20 times in all.
    log_every = per_epoch if schedule.epochs is not None else max(1, iterations // 20)
    history, recent = [], []
    iteration = 0
    for iteration in range(1, iterations + 1):
        check_cancel(cancel)
        images, classes, band, interior = sampler.batch(batch_size)
        protected = (images + generators(images, band, interior, epsilon)).clamp(0.0, 1.0)
        seen, targets = augment_batch(protected, classes, augment) if augment is not None else (protected, classes)
        loss = dice_ce_loss(surrogate(seen), targets)
        generator_optimiser.zero_grad(set_to_none=True)
        loss.backward()
        generator_optimiser.step()
        if (iteration - 1) % surrogate_every == 0:
            surrogate_optimiser.zero_grad(set_to_none=True)
            dice_ce_loss(surrogate(seen.detach()), targets).backward()
            surrogate_optimiser.step()
        recent = (recent + [mean_over_ranks(loss.item())])[-10:]
        if iteration % log_every == 0 or iteration == iterations:
            # The gap between clean and protected loss is the shortcut the perturbation offers; no gap, no protection.
            with torch.no_grad():
                clean_loss = float(dice_ce_loss(surrogate(images), classes))
            history.append({"iteration": iteration, "epoch": round(iteration / per_epoch, 2),
                            "loss_protected": loss.item(), "loss_clean": clean_loss})
            if on_step is not None:
                on_step(iteration / iterations, f"iteration {iteration}/{iterations}, "
                                                f"surrogate loss {loss.item():.3f} (clean {clean_loss:.3f})")
        if schedule.stop_early and len(recent) == 10 and np.mean(recent) < settings.loss_threshold:
            break
    perturbation.eval()
    return _fit_log(iteration, iterations, per_epoch, schedule.learning_rate, sampler.patch, batch_size, history)


def _fit_log(iterations_run: int, iterations: int, per_epoch: int, learning_rate: float, patch: int,
             batch_size: int, history: List[Dict]) -> Dict:
    """The fitting log of every report; the final losses are the last logged ones (None when nothing was fitted)."""
    last = history[-1] if history else {"loss_protected": None, "loss_clean": None}
    return {
        "iterations_run": iterations_run,
        "iterations_budget": iterations,
        "iterations_per_epoch": per_epoch,
        "learning_rate": learning_rate,
        "patch_size": patch,
        "batch_size": batch_size,
        "final_loss_protected": last["loss_protected"],
        "final_loss_clean": last["loss_clean"],
        "history": history,
    }
