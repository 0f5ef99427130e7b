"""Design probe (not a test): which 4/255 change of the ROI fools a victim on low-contrast lesions?

The slices are `faint_slices` (UMedProtectLib/evaluation/faint.py: 48x48, 1-2 lesions of contrast k x 4/255 in a
flat organ, noise of 4/255; 160 training and 60 test slices from disjoint seeds). The probes change the training
slices only; one victim of the evaluation (`--victim`, default U-Net) trains on them (150 steps, `--seed`, default 0)
and is scored on the clean test slices. The seed also seeds the design's fitting; the slices stay the same. The
README's "faint lesions" figures come from:

    .venv/bin/python benchmarks/noise_shortcut_probe.py --contrast 2 --probes clean flatten cancel denoise quiet
    .venv/bin/python benchmarks/noise_shortcut_probe.py --contrast 4 --probes clean denoise
    .venv/bin/python benchmarks/noise_shortcut_probe.py --contrast 2.5 --steps 300 --augmentation flip \
        --probes clean quiet

Probes: clean; cancel (the ROI moved by 4/255 towards its surroundings' mean: contrast lowered, noise kept);
flatten (each ROI pixel moved towards the surroundings' mean, clamped: contrast and noise lowered); denoise
(each ROI pixel moved towards its Gaussian-blurred value, clamped: the noise removed); any engine design by its name,
e.g. quiet or published (one profile fitted on the training slices, `--preset`, default balanced; `paper` is the
published generation budget).
"""

import argparse
import time

import numpy as np
import torch
from scipy import ndimage

EPSILON = 4 / 255


def _surroundings_mean(image: np.ndarray, lesion: np.ndarray) -> float:
    ring = ndimage.binary_dilation(lesion, iterations=4) & ~ndimage.binary_dilation(lesion, iterations=1)
    return float(image[ring].mean()) if ring.any() else float(image.mean())


def probe_images(images: np.ndarray, labels: np.ndarray, probe: str) -> np.ndarray:
    """The training slices changed by a hand-made probe (clean, cancel, flatten, denoise)."""
    out = []
    for image, label in zip(images, labels):
        delta = np.zeros_like(image)
        if probe == "denoise":
            delta = np.clip(ndimage.gaussian_filter(image, 1.5) - image, -EPSILON, EPSILON) * (label > 0)
        elif probe in ("cancel", "flatten"):
            components, count = ndimage.label(label > 0)
            for index in range(1, count + 1):
                lesion = components == index
                towards = _surroundings_mean(image, lesion) - image[lesion]
                delta[lesion] = (np.clip(towards, -EPSILON, EPSILON) if probe == "flatten"
                                 else -EPSILON * np.sign(image[lesion].mean() - _surroundings_mean(image, lesion)))
        elif probe != "clean":
            raise ValueError(f"unknown probe {probe!r}")
        out.append(np.clip(image + delta, 0, 1).astype(np.float32))
    return np.stack(out)


def design_images(images: np.ndarray, labels: np.ndarray, design: str, preset: str, seed: int) -> np.ndarray:
    """An engine design (quiet, published): one profile fitted on the slices, budget 4/255 of their robust range."""
    from UMedProtectLib import ProtectSettings, fit_profile, protect
    from UMedProtectLib.intensity import robust_range
    from UMedProtectLib.settings import PERCENTILES

    low, high = robust_range(images, PERCENTILES)  # the engine's epsilon is relative to this range
    settings = ProtectSettings(design=design, preset=preset, device="cpu", epsilon=EPSILON / (high - low), seed=seed)
    profile = fit_profile([(images, labels)], settings)
    history = profile.info["training"]["history"]
    gaps = ", ".join(f"{h['loss_protected']:.3f}/{h['loss_clean']:.3f}" for h in history[:: max(1, len(history) // 5)])
    print(f"  {design} ({preset}): {profile.info['training']['iterations_run']} iterations; surrogate loss "
          f"protected/clean: {gaps}", flush=True)
    return protect(images, labels, settings=settings, profile=profile).protected.astype(np.float32)


def main() -> None:
    from UMedProtectLib.evaluation.faint import faint_slices
    from UMedProtectLib.evaluation.metrics import dice, psnr
    from UMedProtectLib.evaluation.training import Recipe, predict, train_victim
    from UMedProtectLib.designs import DESIGNS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contrast", type=float, default=2, help="lesion contrast in multiples of 4/255")
    parser.add_argument("--augmentation", choices=["none", "flip", "full"], default="none",
                        help="the victim's augmentation level (the evaluation's own code)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--victim", default="unet", help="unet, attention-unet or fpn")
    parser.add_argument("--preset", default="balanced", help="the engine designs' preset (e.g. paper)")
    parser.add_argument("--seed", type=int, default=0, help="the victim's and the engine design's seed")
    parser.add_argument("--probes", nargs="+", default=["clean", "denoise"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = faint_slices(160, args.contrast, EPSILON, seed=1)
    test = faint_slices(60, args.contrast, EPSILON, seed=2)
    device = torch.device("cpu")
    print("| contrast | augmentation | victim | seed | probe | test DSC | PSNR dB | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for probe in args.probes:
        start = time.monotonic()
        images = (design_images(*train, probe, args.preset, args.seed) if probe in DESIGNS
                  else probe_images(*train, probe))
        model = train_victim(args.victim, images, train[1], Recipe(steps=args.steps), args.seed, device,
                             augmentation=args.augmentation).model
        score = dice(predict(model, test[0], device), test[1])
        print(f"| {args.contrast:g} x 4/255 | {args.augmentation} | {args.victim} | {args.seed} | {probe} | "
              f"{score:.3f} | {psnr(train[0], images):.1f} | {time.monotonic() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
