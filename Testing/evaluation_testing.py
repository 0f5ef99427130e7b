"""Support for the evaluation tests: corpora that need optional packages or exist only for a test, the distance
across a split, and the protection curve read back from evaluation.json."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, TypeVar

import pytest

from UMedProtectLib.errors import InputError
from UMedProtectLib.evaluation.corpora.corpus import Corpus

Loaded = TypeVar("Loaded")


def stardist_or_skip(load: Callable[[], Loaded]) -> Loaded:
    """What `load` returns, or a skip where tifffile or stardist (which ships the nuclei image and volume) is
    missing."""
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
