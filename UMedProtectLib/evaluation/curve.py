"""The protection curve (DSC against epsilon, PSNR and size relative to noise) read back from an evaluation JSON,
so that the panel and the CLI can show where a chosen setting lies on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Union


def curve_points(results: Union[Dict, str, Path], method: str = "umed-dataset", corpus: Optional[str] = None,
                 augmentation: Optional[str] = None) -> List[Dict]:
    """Points sorted by corpus, augmentation level and epsilon: epsilon, psnr_db, linf_over_noise, mean_dice,
    best_dice, clean_mean_dice, corpus, augmentation."""
    if not isinstance(results, dict):
        results = json.loads(Path(results).read_text())
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


def nearest_point(points: List[Dict], epsilon: float) -> Optional[Dict]:
    """The measured point closest to a chosen epsilon (None without points)."""
    return min(points, key=lambda p: abs(p["epsilon"] - epsilon)) if points else None
