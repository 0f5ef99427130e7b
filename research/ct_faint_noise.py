"""Measurement (not a test): is the `ct-faint` corpus in the regime where the designs act, noise about the budget?

Measures, on Debian's invesalius-examples head CT and on the corpus built from it: the brain's own noise (the std of
the image minus its in-plane Gaussian blur, sigma 1.5 px, over the brain's interior away from lesions) in HU and in
/255 of the soft-tissue window the corpus uses, against the budget; how correlated that noise is (the residue's
correlation with its neighbour one pixel over, and the engine's white-noise estimate on 32x32 squares of the brain's
interior, each beside white noise of the same std); the budget in HU in the CT reading windows; and the lesions:
the inserted contrast, the contrast seen on the images (inside against a 3-pixel ring just outside, in each study's
sign, mean over studies), their sizes and the split's sizes. Writes one JSON file (docs/results/ct-faint.json;
docs/results/ct-faint.md reads it):

    PYTHONPATH=. .venv/bin/python research/ct_faint_noise.py [--output docs/results/ct-faint.json]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from scipy import ndimage

from UMedProtectLib.budget import WINDOW_PRESETS
from UMedProtectLib.evaluation.corpora import ct_lesions
from UMedProtectLib.files.transaction import OutputTransaction
from UMedProtectLib.method.measures.budget_strength import noise_std

EPSILON = 4 / 255
MULTIPLES = (1.0, 2.5, 4.0)


def neighbour_correlation(residue: np.ndarray, inside: np.ndarray) -> float:
    """Correlation of the residue with the residue one pixel to the right, where both are inside."""
    both = inside[:, :, :-1] & inside[:, :, 1:]
    return float(np.corrcoef(residue[:, :, :-1][both], residue[:, :, 1:][both])[0, 1])


def white_noise_estimate(image: np.ndarray, inside: np.ndarray, patch: int = 32) -> float:
    """The engine's white-noise estimate (Immerkaer), median over the patch x patch squares wholly inside."""
    values = [noise_std(image[z, y:y + patch, x:x + patch]) for z in range(len(image))
              for y in range(0, image.shape[1] - patch + 1, patch) for x in range(0, image.shape[2] - patch + 1, patch)
              if inside[z, y:y + patch, x:x + patch].all()]
    return float(np.median(values))


def signed_ring_contrast(study) -> float:
    """Mean inside the label minus the mean of a 3-pixel ring just outside it, in the study's lesions' sign."""
    label = study.label.astype(bool)
    ring = ndimage.binary_dilation(label, np.ones((1, 7, 7))) & ~label
    sign = 1.0 if study.group == "hyper" else -1.0
    return sign * float(study.image[label].mean() - study.image[ring].mean())


def lesion_diameters_px(corpus) -> list:
    """In-plane equivalent diameter of every lesion section (a connected component of a labelled slice)."""
    diameters = []
    for study in corpus.train + corpus.test:
        for section in study.label:
            components, count = ndimage.label(section)
            areas = ndimage.sum(section, components, range(1, count + 1)) if count else []
            diameters += [float(2 * np.sqrt(a / np.pi)) for a in areas]
    return diameters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/results/ct-faint.json"))
    args = parser.parse_args()
    width = ct_lesions.WINDOW.width
    image, brain, first, spacing = ct_lesions.brain_ct()
    residue, inside = ct_lesions.high_pass(image)
    noise = float(residue[inside].std())
    white = np.random.default_rng(0).standard_normal(image.shape) * noise + 0.5  # stays inside BRAIN_HU's window
    white_residue, _ = ct_lesions.high_pass(white)
    data = {
        "command": "PYTHONPATH=. .venv/bin/python research/ct_faint_noise.py",
        "source": {"file": str(ct_lesions.SOURCE), "spacing_zyx_mm": list(spacing),
                   "brain_slices": [first, first + len(image)], "brain_voxels_measured": int(inside.sum())},
        "window": ct_lesions.WINDOW.to_dict(),
        "epsilon_255": EPSILON * 255,
        "budget_hu": {name: EPSILON * w for name, (_level, w) in WINDOW_PRESETS.items()},
        "noise": {
            "high_pass_sigma_px": ct_lesions.HIGH_PASS_SIGMA,
            "std_hu": noise * width,
            "std_255_of_window": noise * 255,
            "std_over_epsilon": noise / EPSILON,
            "std_255_of_brain_window": noise * width / WINDOW_PRESETS["brain"][1] * 255,
            "neighbour_correlation": neighbour_correlation(residue, inside),
            "neighbour_correlation_white_noise": neighbour_correlation(white_residue, inside),
            # The engine's report (budget.epsilon_to_noise) uses this estimate, exact for white noise.
            "white_noise_estimate_255": white_noise_estimate(image, inside) * 255,
            "white_noise_estimate_255_on_white_noise": white_noise_estimate(white, inside) * 255,
        },
        "corpora": {},
    }
    for multiple in MULTIPLES:
        corpus = ct_lesions.ct_faint_corpus(multiple, EPSILON)
        images, labels = corpus.slices("train")
        contrasts = [signed_ring_contrast(s) for s in corpus.train + corpus.test]
        diameters = lesion_diameters_px(corpus)
        data["corpora"][f"{multiple:g}x"] = {
            **corpus.summary(),
            "inserted_contrast_hu": multiple * EPSILON * width,
            "inserted_contrast_over_epsilon": multiple,
            "image_contrast_over_epsilon_mean": float(np.mean(contrasts)) / EPSILON,
            "image_contrast_over_epsilon_range": [float(np.min(contrasts)) / EPSILON,
                                                  float(np.max(contrasts)) / EPSILON],
            "inserted_contrast_over_noise": multiple * EPSILON / noise,
            "noise_over_epsilon_in_training_images": ct_lesions.brain_noise(images, labels) / EPSILON,
            "lesion_sections": len(diameters),
            "lesion_section_diameter_px_quartiles": [float(q) for q in np.percentile(diameters, [25, 50, 75])],
            "labelled_slice_fraction": float(np.mean([s.any() for s in labels])),
        }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with OutputTransaction() as transaction:
        transaction.stage(args.output).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        transaction.commit()
    print(json.dumps(data["noise"], indent=2))


if __name__ == "__main__":
    main()
