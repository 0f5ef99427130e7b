"""The work an evaluation will do, in units of victim training steps, and its expected duration on this machine."""

from __future__ import annotations

import time
from typing import Dict, List, Tuple

import numpy as np
import torch

from .config import EvaluationConfig
from .nnunet_victim import CONFIGURATIONS as NNUNET_VICTIMS
from .umed import mode_and_design
from .victim_training import victim_loss
from .victims import make_victim


def protected_sets(config: EvaluationConfig) -> List[Tuple[str, float]]:
    """(method, epsilon) pairs to generate: every method at the table's epsilon, the sweep methods at each epsilon."""
    pairs = [(m, config.epsilon) for m in config.methods]
    for epsilon in config.sweep:
        pairs += [(m, epsilon) for m in config.sweep_methods if (m, epsilon) not in pairs]
    return pairs


def seconds_per_step(victim: str, shape: Tuple[int, int], batch_size: int, device: torch.device) -> float:
    """Measured time of one training step of a victim on this machine (after one warm-up step)."""
    torch.manual_seed(0)
    model = make_victim(victim).to(device)
    optimiser = torch.optim.Adam(model.parameters())
    x = torch.rand(batch_size, 1, *shape, device=device)
    y = (x[:, 0] > 0.5).long()
    timings = []
    for _ in range(3):
        start = time.monotonic()
        loss = victim_loss(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings.append(time.monotonic() - start)
    return float(np.median(timings[1:]))


def victim_seconds(victim: str, shape: Tuple[int, int], config: EvaluationConfig, device: torch.device) -> float:
    """Expected seconds of one training of `victim`; an nnU-Net run is guessed from the U-Net's measured step (its
    2D network is about 4 times the U-Net's work per batch; training plus its validation batches, plus planning)."""
    if victim in NNUNET_VICTIMS:
        batches = config.nnunet.epochs * config.nnunet.iterations * 1.2
        return 4 * seconds_per_step("unet", shape, config.recipe.batch_size, device) * batches + 60.0
    return seconds_per_step(victim, shape, config.recipe.batch_size, device) * config.recipe.steps


def estimate(config: EvaluationConfig, corpora: Dict[str, Dict], device: torch.device) -> Dict:
    """Expected seconds per corpus: victim trainings from measured step times, generation from the same scale.

    corpora maps a name to {"shape": (H, W), "train_slices": n, "train_studies": n}.
    """
    from ..settings import ProtectSettings

    per_corpus = {}
    sets = protected_sets(config)
    umed = ProtectSettings(preset=config.umed_preset, iterations=config.umed_iterations)
    for name, info in corpora.items():
        iterations = umed.training_iterations(info["train_slices"], umed.batch_size)
        per_study = umed.training_iterations(max(1, info["train_slices"] // info["train_studies"]), umed.batch_size)
        runs = {v: victim_seconds(v, tuple(info["shape"]), config, device) for v in config.victims}
        training = (sum(runs.values()) * len(config.seeds) * len(config.augmentations) * len(config.defences)
                    * (1 + len(sets)))
        # Generation runs width-8 networks: roughly a tenth of a U-Net step per forward-backward (measured on CPU).
        small = seconds_per_step("unet", tuple(info["shape"]), config.recipe.batch_size, device) / 10
        batches = max(1, info["train_slices"] // config.recipe.batch_size)
        seconds = {
            "gaussian": 1.0,
            "checker": 1.0,
            "lsp": 1.0,
            "ar": 1.0,
            "em-pgd": (config.em_pgd_rounds * (config.em_pgd_surrogate_steps + batches * (config.em_pgd_steps + 2))
                       * small),
            # Per iteration: two generators and the surrogate, forward and backward.
            "umed-dataset": iterations * 4 * small,
            "umed-transfer": iterations * 4 * small,
            "umed-per-study": per_study * 4 * small * info["train_studies"],
        }
        generation = sum(seconds[mode_and_design(m)[0]] for m, _ in sets)
        per_corpus[name] = {"victim_training_seconds": runs, "training_seconds": training,
                            "generation_seconds": generation}
    total = sum(c["training_seconds"] + c["generation_seconds"] for c in per_corpus.values())
    return {"seconds": total, "per_corpus": per_corpus, "protected_sets": len(sets)}
