"""The PNG figure: per corpus and augmentation level, DSC bars per method and victim, one example row, and DSC
against PSNR."""

from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np

from .table import ROW_NAMES


def _bars(axis, result: Dict, epsilon: float, victims) -> None:
    rows = [("clean", result["clean"])] + [(e["method"], e["victims"]) for e in result["methods"]
                                           if abs(e["epsilon"] - epsilon) < 1e-9]
    width = 0.8 / len(victims)
    for v_index, victim in enumerate(victims):
        x = np.arange(len(rows)) + (v_index - (len(victims) - 1) / 2) * width
        means = [r[1][victim]["mean"] for r in rows]
        lows = [r[1][victim]["mean"] - r[1][victim]["worst"] for r in rows]
        highs = [r[1][victim]["best"] - r[1][victim]["mean"] for r in rows]
        axis.bar(x, means, width, yerr=[lows, highs], capsize=2, label=victim)
    axis.set_xticks(np.arange(len(rows)))
    axis.set_xticklabels([ROW_NAMES.get(r[0], r[0]).replace(", ", ",\n") for r in rows], fontsize=6, rotation=30,
                         ha="right")
    axis.set_ylim(0, 1)
    axis.set_ylabel("test DSC (mean, bar = seed range)", fontsize=7)
    axis.set_title(f"{epsilon * 255:g}/255", fontsize=8)
    axis.legend(fontsize=6)


def _curve(axis, result: Dict) -> None:
    methods = sorted({e["method"] for e in result["methods"]})
    plotted = False
    for method in methods:
        entries = sorted((e for e in result["methods"] if e["method"] == method), key=lambda e: e["epsilon"])
        if len(entries) < 2:
            continue
        psnr = [e["stats"]["psnr_db"] for e in entries]
        plotted = True
        axis.plot(psnr, [e["mean_dice"] for e in entries], "o-", label=f"{method} mean")
        axis.plot(psnr, [e["best_dice"] for e in entries], "x--", label=f"{method} best")
        for e, p in zip(entries, psnr):
            axis.annotate(f"{e['epsilon_255']:g}", (p, e["mean_dice"]), fontsize=6)
    if not plotted:
        axis.text(0.5, 0.5, "no epsilon sweep in this run", ha="center", fontsize=7, transform=axis.transAxes)
    axis.axhline(result["clean_mean_dice"], color="grey", linestyle=":", label="clean mean")
    axis.set_xlabel("PSNR dB", fontsize=7)
    axis.set_ylabel("test DSC", fontsize=7)
    axis.set_ylim(0, 1)
    axis.set_title("sweep (labels: epsilon x 255)", fontsize=8)
    axis.legend(fontsize=5)


def save_figure(results: Dict, path: Path) -> None:
    """Write the figure to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    config = results["config"]
    corpora = [(f"{name} [{level}]", result) for name, by_level in results["corpora"].items()
               for level, result in by_level["augmentation"].items()]
    figure = plt.figure(figsize=(18, 3.2 * len(corpora)))
    grid = figure.add_gridspec(len(corpora), 8, width_ratios=[2.2, 1, 1, 1, 1, 1, 1, 1.8])
    for row, (name, result) in enumerate(corpora):
        _bars(figure.add_subplot(grid[row, 0]), result, config["epsilon"], config["victims"])
        pictures = result.get("_figure")
        # The example: UMed fitted on the training set when it ran (the product), else the lowest mean DSC.
        candidates = [e for e in result["methods"] if abs(e["epsilon"] - config["epsilon"]) < 1e-9]
        if pictures and candidates:
            preferred = [e for e in candidates if e["method"] == "umed-dataset"]
            chosen = preferred[0] if preferred else min(candidates, key=lambda e: e["mean_dice"])
            example = pictures["methods"][(chosen["method"], chosen["epsilon"])]
            difference = example["train_protected"] - example["train_image"]
            limit = max(float(np.abs(difference).max()), 1e-6)
            panels = [
                ("original (train)", example["train_image"], "gray", 0, 1),
                (f"{chosen['method']}", example["train_protected"], "gray", 0, 1),
                ("difference", difference, "seismic", -limit, limit),
                ("test slice + truth", pictures["test_image"], "gray", 0, 1),
                ("clean-trained pred.", pictures["clean_prediction"], "viridis", 0, 1),
                ("protected-trained pred.", example["prediction"], "viridis", 0, 1),
            ]
            for column, (title, picture, cmap, low, high) in enumerate(panels, start=1):
                axis = figure.add_subplot(grid[row, column])
                axis.imshow(picture, cmap=cmap, vmin=low, vmax=high)
                if title.startswith("test slice"):
                    axis.contour(pictures["test_label"], levels=[0.5], colors="r", linewidths=0.6)
                axis.set_title(f"{name}\n{title}" if column == 1 else title, fontsize=7)
                axis.axis("off")
        _curve(figure.add_subplot(grid[row, 7]), result)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
