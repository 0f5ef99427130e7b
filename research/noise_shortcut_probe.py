"""Design probe (not a test): which 4/255 change of the ROI fools a victim on low-contrast lesions?

The slices are `faint_slices` (UMedProtectLib/evaluation/corpora/faint.py: 48x48, 1-2 lesions of contrast k x 4/255 in a
flat organ, noise of 4/255; 160 training and 60 test slices from disjoint seeds). The probes change the training
slices only; victims of the evaluation train on them and are scored on the clean test slices. Every combination of
`--probes`, `--seeds`, `--victims` and `--augmentations` is one row; a seed seeds the victim and the engine design's
fit, the slices stay the same. `--workers` runs rows side by side (one thread each; `--device cuda` on a GPU), so
the faint-lesion ladder is one command; it prints every row, then per probe, victim and level the DSC of each seed,
the mean and the best (the largest: what an attacker keeps). The figures of docs/results/faint-lesions.md come from it.

Probes: clean; an engine design by its name, e.g. quiet, quiet-rim or published (one profile fitted on the
training slices, `--preset`, default balanced; `paper` is the published generation budget); or hand-made terms
joined by '+', applied in order: cancel (each lesion moved by 4/255 towards its surroundings' mean: contrast
lowered, noise kept); flatten (each ROI pixel moved towards the surroundings' mean, clamped); lesion-mean (each
lesion pixel moved towards its lesion's mean, clamped: the noise removed, the contrast kept); denoise[@SIGMA] (each
ROI pixel moved towards its Gaussian-blurred value, sigma 1.5, clamped); rim[@A] (the 3-pixel rim outside the ROI
moved by A x 4/255 in the sign of its own noise, A = 1); rim-gain@G (the rim's noise amplified, G x noise clamped
to 4/255). E.g. denoise+rim@0.7.
"""

import argparse
import concurrent.futures
import multiprocessing
import time

import numpy as np
import torch
from scipy import ndimage

EPSILON = 4 / 255


def _surroundings_mean(image: np.ndarray, lesion: np.ndarray) -> float:
    ring = ndimage.binary_dilation(lesion, iterations=4) & ~ndimage.binary_dilation(lesion, iterations=1)
    return float(image[ring].mean()) if ring.any() else float(image.mean())


def _noise(image: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """The image minus its Gaussian blur: what the denoising takes out and the rim pushes out."""
    return image - ndimage.gaussian_filter(image, sigma)


def _apply(term: str, image: np.ndarray, roi: np.ndarray, delta: np.ndarray) -> None:
    """Write one probe term's change into delta: inside the ROI, or on the 3-pixel rim just outside it."""
    name, _, value = term.partition("@")
    rim = ndimage.binary_dilation(roi, iterations=3) & ~roi if name.startswith("rim") else None
    if name == "denoise":
        delta[roi] = np.clip(-_noise(image, float(value or 1.5))[roi], -EPSILON, EPSILON)
    elif name in ("cancel", "flatten", "lesion-mean"):
        components, count = ndimage.label(roi)
        for index in range(1, count + 1):
            lesion = components == index
            outside = _surroundings_mean(image, lesion)
            if name == "lesion-mean":
                delta[lesion] = np.clip(image[lesion].mean() - image[lesion], -EPSILON, EPSILON)
            elif name == "flatten":
                delta[lesion] = np.clip(outside - image[lesion], -EPSILON, EPSILON)
            else:
                delta[lesion] = -EPSILON * np.sign(image[lesion].mean() - outside)
    elif name == "rim":
        delta[rim] = float(value or 1) * EPSILON * np.sign(_noise(image)[rim])
    elif name == "rim-gain":
        delta[rim] = np.clip(float(value) * _noise(image)[rim], -EPSILON, EPSILON)
    elif name != "clean":
        raise ValueError(f"unknown probe {term!r}")


def probe_images(images: np.ndarray, labels: np.ndarray, probe: str) -> np.ndarray:
    """The training slices changed by a hand-made probe: terms joined by '+', applied in order."""
    out = []
    for image, label in zip(images, labels):
        delta = np.zeros_like(image)
        for term in probe.split("+"):
            _apply(term, image, label > 0, delta)
        out.append(np.clip(image + delta, 0, 1).astype(np.float32))
    return np.stack(out)


def design_images(images: np.ndarray, labels: np.ndarray, design: str, preset: str, seed: int) -> np.ndarray:
    """An engine design (quiet, published): one profile fitted on the slices, budget 4/255 of their robust range."""
    from UMedProtectLib import ProtectSettings, fit_profile, protect
    from UMedProtectLib.method.intensity import robust_range
    from UMedProtectLib.settings import PERCENTILES

    low, high = robust_range(images, PERCENTILES)  # the engine's epsilon is relative to this range
    settings = ProtectSettings(design=design, preset=preset, device="cpu", epsilon=EPSILON / (high - low), seed=seed)
    profile = fit_profile([(images, labels)], settings)
    history = profile.info["training"]["history"]
    gaps = ", ".join(f"{h['loss_protected']:.3f}/{h['loss_clean']:.3f}" for h in history[:: max(1, len(history) // 5)])
    print(f"  {design} ({preset}): {profile.info['training']['iterations_run']} iterations"
          + (f"; surrogate loss protected/clean: {gaps}" if gaps else " (hand-made: nothing fitted)"), flush=True)
    return protect(images, labels, settings=settings, profile=profile).protected.astype(np.float32)


def _fit(job: tuple) -> np.ndarray:
    """(probe, seed, preset, contrast) -> the probe's training slices; a worker's task, so fits run side by side."""
    probe, seed, preset, contrast = job
    from UMedProtectLib.designs import DESIGNS
    from UMedProtectLib.evaluation.corpora.faint import faint_slices

    torch.set_num_threads(1)
    train = faint_slices(160, contrast, EPSILON, seed=1)
    return (design_images(*train, probe, preset, seed) if probe in DESIGNS else probe_images(*train, probe))


def _train(job: tuple) -> dict:
    """One victim on one probe's slices at one augmentation level, scored on the clean test slices."""
    probe, seed, victim, level, images, contrast, steps, device = job
    from UMedProtectLib.evaluation.corpora.faint import faint_slices
    from UMedProtectLib.evaluation.metrics import dice, psnr
    from UMedProtectLib.evaluation.victim_training import Recipe, predict, train_victim

    torch.set_num_threads(1)
    start = time.monotonic()
    train = faint_slices(160, contrast, EPSILON, seed=1)
    test = faint_slices(60, contrast, EPSILON, seed=2)
    model = train_victim(victim, images, train[1], Recipe(steps=steps), seed, torch.device(device),
                         augmentation=level).model
    return {"probe": probe, "seed": seed, "victim": victim, "augmentation": level,
            "dice": round(dice(predict(model, test[0], torch.device(device)), test[1]), 4),
            "psnr_db": round(psnr(train[0], images), 2), "seconds": round(time.monotonic() - start)}


def _summary(rows: list) -> str:
    """Per probe, victim and level: DSC per seed, mean and the victims' best (the largest: what an attacker keeps)."""
    lines = ["| probe | augmentation | victim | DSC per seed | mean | best | PSNR dB |",
             "|---|---|---|---|---|---|---|"]
    keys = sorted({(r["probe"], r["augmentation"], r["victim"]) for r in rows})
    for probe, level, victim in keys:
        group = sorted((r for r in rows if (r["probe"], r["augmentation"], r["victim"]) == (probe, level, victim)),
                       key=lambda r: r["seed"])
        scores = [r["dice"] for r in group]
        lines.append(f"| {probe} | {level} | {victim} | {' / '.join(f'{s:.3f}' for s in scores)} | "
                     f"{np.mean(scores):.3f} | {max(scores):.3f} | {min(r['psnr_db'] for r in group):.1f} |")
    return "\n".join(lines)


def main() -> None:
    from UMedProtectLib.designs import DESIGNS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contrast", type=float, default=2, help="lesion contrast in multiples of 4/255")
    parser.add_argument("--augmentations", "--augmentation", nargs="+", choices=["none", "flip", "full"],
                        default=["none"], help="the victims' augmentation levels (the evaluation's own code)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--victims", "--victim", nargs="+", default=["unet"], help="unet, attention-unet, fpn")
    parser.add_argument("--preset", default="balanced", help="the engine designs' preset (e.g. paper)")
    parser.add_argument("--seeds", "--seed", nargs="+", type=int, default=[0],
                        help="each seeds a victim and the engine design's fit")
    parser.add_argument("--probes", nargs="+", default=["clean", "denoise"])
    parser.add_argument("--workers", type=int, default=1, help="processes side by side, one thread each")
    parser.add_argument("--device", default="cpu", help="the victims' device (cpu, cuda)")
    parser.add_argument("--json", help="write every row to this JSON file")
    args = parser.parse_args()
    def fit_key(probe: str, seed: int) -> tuple:  # a hand-made probe is the same for every seed: fit it once
        return probe, seed if probe in DESIGNS else 0, args.preset, args.contrast

    fits = sorted({fit_key(p, s) for p in args.probes for s in args.seeds})
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        slices = dict(zip(fits, pool.map(_fit, fits)))
        jobs = [(p, s, v, level, slices[fit_key(p, s)], args.contrast, args.steps, args.device)
                for p in args.probes for s in args.seeds for v in args.victims for level in args.augmentations]
        print("| contrast | augmentation | victim | seed | probe | test DSC | PSNR dB | seconds |")
        print("|---|---|---|---|---|---|---|---|", flush=True)
        rows = []
        for row in pool.map(_train, jobs):
            rows.append(row)
            print(f"| {args.contrast:g} x 4/255 | {row['augmentation']} | {row['victim']} | {row['seed']} | "
                  f"{row['probe']} | {row['dice']:.3f} | {row['psnr_db']:.1f} | {row['seconds']} |", flush=True)
    print()
    print(_summary(rows))
    if args.json:  # the engine's JSON rule: strict, an infinite PSNR (clean rows) is null
        from UMedProtectLib.files.reports import report_json

        with open(args.json, "wb") as handle:
            handle.write(report_json({"contrast": args.contrast, "steps": args.steps, "preset": args.preset,
                                      "rows": rows}))


if __name__ == "__main__":
    main()
