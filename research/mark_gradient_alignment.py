"""Can a fitted change teach a victim the key's own pattern, where the fixed texture mark teaches only its kind?

The fixed `texture` mark (+pattern in the ROI, -pattern on its band) is learnt from 8/255 on, but as a cue every mark
of its kind carries: the key ranks among its controls (docs/audit.md). Data Taggants (arXiv 2410.09101) make the
training change *teach* the key instead: each training slice gets a change within the budget, on the ROI and its
band only, labels unchanged, fitted so that a training step on the changed slice moves a surrogate's weights the way
that makes it segment the key's probes (faded ROI + the key's pattern) better than the controls' probes (the same
with control patterns). The probes carry the pattern; the training change need not.

The surrogate is the engine's own encoder-decoder (method/networks), trained here on the clean split, never a
victim's network; the victim (the repository's U-Net, flips) is then trained on the changed split and audited with
the exact rank test over 99 controls on the faded test studies, as `evaluation/mark_audit.py` does. Prints one JSON
line per budget with the victims' Dice, PSNR and the audit of the marked-trained victim and of its clean twin.

    OMP_NUM_THREADS=1 .venv/bin/python research/mark_gradient_alignment.py --budgets 8,16 --iterations 150
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from UMedProtectLib.evaluation.corpora.registry import load_corpus
from UMedProtectLib.evaluation.mark_audit import AuditSetup, evaluation_key, probes_for, segmenter
from UMedProtectLib.evaluation.metrics import dice
from UMedProtectLib.evaluation.victim_training import Recipe, predict, train_victim
from UMedProtectLib.marks import MARKS
from UMedProtectLib.marks.embed import contour_sign, faded
from UMedProtectLib.method.fitting.losses import dice_ce_loss
from UMedProtectLib.method.networks.encoder_decoder import EncoderDecoder


def surrogate(images: torch.Tensor, labels: torch.Tensor, steps: int, seed: int) -> EncoderDecoder:
    """The engine's encoder-decoder trained on the clean slices with flips."""
    torch.manual_seed(seed)
    model = EncoderDecoder(1, 2, width=16, depth=3)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        index = torch.randint(len(images), (16,))
        x, y = images[index], labels[index]
        if torch.rand(()) < 0.5:
            x, y = x.flip(-1), y.flip(-1)
        optimiser.zero_grad()
        dice_ce_loss(model(x), y).backward()
        optimiser.step()
    return model


def key_gradient(model, corpus, key, amplitude: float, controls: int) -> list:
    """The gradient of (loss on the key's probes - mean loss on control probes) over the training studies' slices:
    the direction a step must take for the model to segment the key's faded probes better than the controls'."""
    mark = MARKS["texture"]
    params = [p for p in model.parameters()]
    total = None
    seeds = [key.seed("mark")] + [key.seed(f"alignment-control/{i}") for i in range(controls)]
    for study in corpus.train:
        roi = study.label > 0
        base = faded(study.image, roi, 0.5)
        sign = contour_sign(roi)
        y = torch.from_numpy(study.label.astype(np.int64))
        losses = []
        for seed in seeds:
            probe = np.clip(base + amplitude * sign * mark.pattern(seed, roi.shape[-2:]), 0, 1)
            losses.append(dice_ce_loss(model(torch.from_numpy(probe.astype(np.float32))[:, None]), y))
        objective = losses[0] - torch.stack(losses[1:]).mean()
        grads = torch.autograd.grad(objective, params)
        total = grads if total is None else [a + b for a, b in zip(total, grads)]
    return [g.detach() for g in total]


def fit_change(model, images, labels, region, target, budget: float, iterations: int, seed: int) -> torch.Tensor:
    """The change (N, 1, H, W) within +-budget on `region`, fitted so that the training gradient on the changed
    slices points along `target` (cosine), batch by batch."""
    generator = torch.Generator().manual_seed(seed)
    delta = torch.zeros_like(images, requires_grad=True)
    optimiser = torch.optim.Adam([delta], lr=budget / 10)
    params = [p for p in model.parameters()]
    target_flat = torch.cat([g.flatten() for g in target])
    for iteration in range(iterations):
        index = torch.randperm(len(images), generator=generator)[:32]
        x = (images[index] + delta[index] * region[index]).clamp(0, 1)
        grads = torch.autograd.grad(dice_ce_loss(model(x), labels[index]), params, create_graph=True)
        flat = torch.cat([g.flatten() for g in grads])
        loss = 1 - torch.nn.functional.cosine_similarity(flat, target_flat, dim=0)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            delta.clamp_(-budget, budget)
        if iteration % 25 == 0:
            print(f"  iteration {iteration}: alignment {1 - loss.item():.3f}", flush=True)
    return (delta * region).detach()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="synth-faint")
    parser.add_argument("--budgets", default="8,16", help="of 255")
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument("--surrogate-steps", type=int, default=300)
    parser.add_argument("--alignment-controls", type=int, default=8)
    parser.add_argument("--steps", type=int, default=300, help="victim's steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cpu")
    corpus = load_corpus(args.corpus)
    key = evaluation_key(args.seed)
    clean, labels = corpus.slices("train")
    test_images, test_labels = corpus.slices("test")
    images = torch.from_numpy(clean)[:, None]
    targets = torch.from_numpy(labels)
    region = torch.from_numpy(np.concatenate([contour_sign(s.label > 0) != 0 for s in corpus.train])
                              .astype(np.float32))[:, None]
    model = surrogate(images, targets, args.surrogate_steps, 100 + args.seed)
    twin = train_victim("unet", clean, labels, Recipe(steps=args.steps), args.seed, device, augmentation="flip").model
    for budget in (float(b) / 255 for b in args.budgets.split(",")):
        start = time.monotonic()
        target = key_gradient(model, corpus, key, budget, args.alignment_controls)
        change = fit_change(model, images, targets, region, target, budget, args.iterations, args.seed)
        marked = (images + change).clamp(0, 1)[:, 0].numpy()
        fitted = time.monotonic() - start
        victim = train_victim("unet", marked, labels, Recipe(steps=args.steps), args.seed, device,
                              augmentation="flip").model
        probes = probes_for(corpus, key, AuditSetup(amplitude=budget, probe_studies=2), "none")
        mse = float(np.mean((marked.astype(np.float64) - clean) ** 2))
        print(json.dumps({"budget_255": budget * 255, "fit_seconds": round(fitted),
                          "psnr_db": 10 * np.log10(1 / mse) if mse else None,
                          "clean_dice": dice(predict(twin, test_images, device), test_labels),
                          "marked_dice": dice(predict(victim, test_images, device), test_labels),
                          "audit": probes.test(segmenter(victim, device)(probes.volumes)),
                          "clean_twin_audit": probes.test(segmenter(twin, device)(probes.volumes))}), flush=True)


if __name__ == "__main__":
    main()
