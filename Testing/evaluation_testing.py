"""Support for the evaluation tests: corpora that need optional packages or exist only for a test, the distance
across a split, and the protection curve read back from evaluation.json."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, TypeVar

import pytest

from UMedProtectLib.errors import InputError
from UMedProtectLib.evaluation.corpus import Corpus, Study
from UMedProtectLib.evaluation.faint import SIZE, faint_slices

Loaded = TypeVar("Loaded")


def stardist_or_skip(load: Callable[[], Loaded]) -> Loaded:
    """What `load` returns, or a skip where tifffile or stardist (which ships the nuclei image and volume) is missing."""
    pytest.importorskip("tifffile")
    try:
        return load()
    except InputError:
        pytest.skip("stardist (which ships the nuclei image and volume) is not installed")


def min_distance(train: List[List[int]], test: List[List[int]]) -> int:
    """The smallest |i - j| between a training slice i and a test slice j (a large number if one side is empty)."""
    train_indices = sorted(i for slab in train for i in slab)
    test_indices = sorted(j for slab in test for j in slab)
    if not train_indices or not test_indices:
        return 10 ** 9
    return min(abs(i - j) for i in train_indices for j in test_indices)


def split_gap(corpus: Corpus) -> int:
    """The smallest distance in source slices between a training and a test slice of the corpus."""
    return min_distance([s.source_slices for s in corpus.train], [s.source_slices for s in corpus.test])


def faint_corpus(multiple: float = 2.0, epsilon: float = 4 / 255, train_slices: int = 160,
                 test_slices: int = 60) -> Corpus:
    """Faint lesions (evaluation/faint.py) as a corpus: training slices from seed 1, test slices from seed 2, in
    studies of 10 slices. Not one of the harness's corpora: its range is not pinned (see faint.py)."""

    def studies(split: str, count: int, seed: int) -> List[Study]:
        images, labels = faint_slices(count, multiple, epsilon, seed)
        return [Study(f"faint-{split}-{start // 10:03d}", images[start:start + 10], labels[start:start + 10],
                      list(range(start, min(start + 10, count)))) for start in range(0, count, 10)]

    return Corpus(name="synth-faint",
                  description=(f"synthetic faint lesions of contrast {multiple:g}x epsilon ({epsilon * 255:g}/255) on "
                               f"noise of std epsilon, {SIZE}x{SIZE} slices"),
                  train=studies("train", train_slices, 1), test=studies("test", test_slices, 2))


def curve_points(results: Dict, method: str, corpus: Optional[str] = None,
                 augmentation: Optional[str] = None) -> List[Dict]:
    """One method's points of an evaluation's results (as in evaluation.json), sorted by corpus, augmentation level
    and epsilon: epsilon, psnr_db, linf_over_noise, mean_dice, best_dice, clean_mean_dice, corpus, augmentation."""
    points = []
    for name, by_level in results["corpora"].items():
        if corpus is not None and name != corpus:
            continue
        for level, result in by_level["augmentation"].items():
            if augmentation is not None and level != augmentation:
                continue
            for entry in result["methods"]:
                if entry["method"] == method:
                    points.append({"corpus": name, "augmentation": level, "epsilon": entry["epsilon"],
                                   "psnr_db": entry["stats"]["psnr_db"],
                                   "linf_over_noise": entry["stats"]["linf_over_noise"],
                                   "mean_dice": entry["mean_dice"], "best_dice": entry["best_dice"],
                                   "clean_mean_dice": result["clean_mean_dice"]})
    return sorted(points, key=lambda p: (p["corpus"], p["augmentation"], p["epsilon"]))
