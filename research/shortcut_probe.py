"""Design probe (not a test): does a fixed checker in the ROI fool a victim, and what weakens it?

Each probe lays +-epsilon checker squares on the training split of a corpus, trains one victim with the
evaluation's recipe and prints its Dice on the clean test split. The figures of docs/results/frontier.md come from:

    .venv/bin/python research/shortcut_probe.py --corpus nuclei --steps 240 --epsilon 16 \
        --probes roi:2 roi:4 roi:8 interior:8 roi-lbp:8

A probe is REGION:PERIOD: REGION is roi (the whole ROI), interior (the ROI minus the 3-pixel inner band) or
roi-lbp (the whole ROI, scaled by UMed's LBP texture bound with floor 0.25); PERIOD is the checker's period in
pixels (squares of period/2). "clean" trains on the unperturbed split.
"""

import argparse

import numpy as np
import torch


def probe_images(images: np.ndarray, labels: np.ndarray, probe: str, epsilon: float) -> np.ndarray:
    """The training images with the probe's checker laid on them, in [0, 1]."""
    from UMedProtectLib.method.masks import band_and_interior
    from UMedProtectLib.method.perturbations.texture import texture_bound
    from UMedProtectLib.method.perturbations.umed_perturbation import checker_carrier

    if probe == "clean":
        return images
    region_name, period = probe.split(":")
    roi = labels > 0
    region = np.stack([band_and_interior(r, 3)[1] for r in roi]) if region_name == "interior" else roi
    delta = epsilon * checker_carrier(*images.shape[1:], int(period), torch.zeros(())).numpy() * region
    if region_name == "roi-lbp":
        delta = delta * texture_bound(torch.from_numpy(images)[:, None], 0.25)[:, 0].numpy()
    return np.clip(images + delta, 0.0, 1.0).astype(np.float32)


def main() -> None:
    from UMedProtectLib.evaluation.corpora.registry import load_corpus
    from UMedProtectLib.evaluation.metrics import dice, perturbation_stats
    from UMedProtectLib.evaluation.victim_training import Recipe, predict, train_victim

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="nuclei")
    parser.add_argument("--victim", default="unet")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=240)
    parser.add_argument("--epsilon", type=float, default=16, help="in 1/255")
    parser.add_argument("--probes", nargs="+", default=["clean", "roi:8"])
    args = parser.parse_args()
    corpus = load_corpus(args.corpus)
    images, labels = corpus.slices("train")
    test_images, test_labels = corpus.slices("test")
    device = torch.device("cpu")
    print("| corpus | probe | epsilon | victim | seed | steps | test DSC | PSNR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for probe in args.probes:
        perturbed = probe_images(images, labels, probe, args.epsilon / 255)
        psnr = perturbation_stats(images, perturbed, labels)["psnr_db"]
        model = train_victim(args.victim, perturbed, labels, Recipe(steps=args.steps, curve_points=1), args.seed,
                             device).model
        score = dice(predict(model, test_images, device), test_labels)
        print(f"| {args.corpus} | {probe} | {args.epsilon:g}/255 | {args.victim} | {args.seed} | {args.steps} | "
              f"{score:.3f} | {psnr:.1f} |", flush=True)


if __name__ == "__main__":
    main()
