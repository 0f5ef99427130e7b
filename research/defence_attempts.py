"""Attempts to design past the attacker's blur (docs/results/attacker-tools.md, "Attempts to design past it").

Run: OMP_NUM_THREADS=1 python research/defence_attempts.py hand "deep3;ring;grain" none,blur-1
     OMP_NUM_THREADS=1 python research/defence_attempts.py eot published none,blur-1,median-3
`hand`: hand-made changes of synth-faint's training split (deep3: the ROI denoised by a masked Gaussian of sigma
3 px, clamped to epsilon; ring: +epsilon on the ROI's inner 2 px, -epsilon on the 2 px outside; grain: the sign of
smoothed noise, sigma 1.5 px, at +-epsilon inside the ROI). `eot`: the design fitted (fast preset) with its
surrogate seeing every batch through a random Gaussian blur of sigma 0, 0.5, 1 or 1.5 px. Each is scored by a U-Net
(150 steps, no augmentation, seed 0) trained after the attacker's defence; one JSON line per (attempt, defence).
"""

import json
import sys
from dataclasses import replace

import numpy as np
import torch
from scipy import ndimage

import UMedProtectLib.method.fitting.training as engine_training
from UMedProtectLib.designs import DESIGNS
from UMedProtectLib.evaluation.corpora.faint import faint_corpus
from UMedProtectLib.evaluation.defences import apply_defence
from UMedProtectLib.evaluation.metrics import dice, psnr
from UMedProtectLib.evaluation.umed import protect_studies
from UMedProtectLib.evaluation.victim_training import Recipe, predict, train_victim
from UMedProtectLib.method.perturbations.denoising_perturbation import gaussian_blur
from UMedProtectLib.settings import ProtectSettings

EPSILON = 4 / 255
BLUR_SIGMAS = (0.0, 0.5, 1.0, 1.5)


def deep(images: np.ndarray, labels: np.ndarray, sigma: float = 3.0) -> np.ndarray:
    """The ROI's noise removed at every scale a blur keeps: a Gaussian of the ROI alone, clamped to epsilon."""
    out = images.copy()
    for i, (image, label) in enumerate(zip(images, labels)):
        roi = (label > 0).astype(float)
        if roi.any():
            smooth = ndimage.gaussian_filter(image * roi, sigma) / np.maximum(ndimage.gaussian_filter(roi, sigma), 1e-6)
            out[i] = np.clip(image + np.clip(smooth - image, -EPSILON, EPSILON) * roi, 0, 1)
    return out


def ring(images: np.ndarray, labels: np.ndarray, width: int = 2) -> np.ndarray:
    """A fixed-polarity halo on the contour: brighter just inside, darker just outside."""
    out = images.copy()
    for i, label in enumerate(labels):
        roi = label > 0
        inner = roi & ~ndimage.binary_erosion(roi, iterations=width)
        outer = ndimage.binary_dilation(roi, iterations=width) & ~roi
        out[i] = np.clip(images[i] + EPSILON * inner - EPSILON * outer, 0, 1)
    return out


def grain(images: np.ndarray, labels: np.ndarray, scale: float = 1.5) -> np.ndarray:
    """A mid-frequency binary texture at +-epsilon inside the ROI."""
    rng = np.random.default_rng(0)
    field = np.sign(np.stack([ndimage.gaussian_filter(rng.standard_normal(images.shape[1:]), scale)
                              for _ in images]))
    return np.clip(images + EPSILON * field * (labels > 0), 0, 1).astype(images.dtype)


def blurred(images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator):
    """What the EOT fit's surrogate sees: each patch blurred with a random sigma of BLUR_SIGMAS (0 = unchanged)."""
    choice = torch.randint(len(BLUR_SIGMAS), (images.shape[0],), generator=generator)
    out = images.clone()
    for index, sigma in enumerate(BLUR_SIGMAS):
        pick = choice == index
        if sigma > 0 and pick.any():
            out[pick] = gaussian_blur(images[pick], sigma)
    return out, labels


def fitted_through_blur(corpus, design: str) -> np.ndarray:
    """The training split protected by `design` fitted (fast preset) through a random blur."""
    DESIGNS[design] = replace(DESIGNS[design], fit_through_augmentation=True, surrogate_every=1)
    engine_training.augment_batch = blurred  # the fit's augmentation replaced by the attacker's blur
    settings = ProtectSettings(epsilon=EPSILON, preset="fast", design=design, seed=0)
    studies, _ = protect_studies("umed-dataset", corpus.train, settings)
    return np.concatenate(studies)


def main() -> None:
    mode, attempts, defences = sys.argv[1], sys.argv[2].split(";"), sys.argv[3].split(",")
    torch.set_num_threads(1)
    corpus = faint_corpus()
    images, labels = corpus.slices("train")
    test_images, test_labels = corpus.slices("test")
    hand = {"deep3": deep, "ring": ring, "grain": grain}
    for attempt in attempts:
        changed = hand[attempt](images, labels) if mode == "hand" else fitted_through_blur(corpus, attempt)
        for defence in defences:
            train = apply_defence(defence, changed, labels, seed=0)
            victim = train_victim("unet", train, labels, Recipe(steps=150), 0, torch.device("cpu"), augmentation="none")
            score = dice(predict(victim.model, apply_defence(defence, test_images, test_labels, seed=0),
                                 torch.device("cpu")), test_labels)
            print(json.dumps({"attempt": f"{mode} {attempt}", "defence": defence, "dice": round(score, 3),
                              "psnr_db": round(psnr(images, changed), 1)}), flush=True)


if __name__ == "__main__":
    main()
