"""UMed through the engine's public API, in the three ways a data owner can use it."""

from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..progress import CancelFlag, Progress
from .corpora.corpus import Study

UMED_MODES = {
    "umed-per-study": "each training study protected on its own (protect() per study, as in Slicer)",
    "umed-dataset": "one profile fitted on the whole training set, then applied to every study",
    "umed-transfer": "a profile fitted on part of the training set, applied to every study (most never seen)",
}


def mode_and_design(method: str) -> Tuple[str, Optional[str]]:
    """"umed-<design>-<mode>" -> ("umed-<mode>", design); "umed-<mode>" -> (method, None): the engine's default."""
    from ..settings import DESIGNS

    for design in sorted(DESIGNS, key=len, reverse=True):  # "quiet-rim" before "quiet", which is its prefix
        prefix = f"umed-{design}-"
        if method.startswith(prefix):
            return "umed-" + method[len(prefix):], design
    return method, None


def _training_log(result_report: Dict, profile) -> Dict:
    """The surrogate's loss on protected vs clean slices logged by the engine during generation."""
    training = result_report.get("training") if isinstance(result_report, dict) else None
    if not training and profile is not None:
        training = profile.info.get("training")  # a Profile keeps its fitting log in info, not as an attribute
    return training if isinstance(training, dict) else {}


def protect_studies(mode: str, studies: List[Study], settings, transfer_fraction: float = 0.5,
                    on_progress: Optional[Callable[[float, str], None]] = None,
                    cancel: CancelFlag = None) -> Tuple[List[np.ndarray], Dict]:
    """Protected images, one per study in order, and what the engine reported (reports, surrogate logs, timing)."""
    from .. import fit_profile, protect

    def relay(offset: float, share: float) -> Callable[[Progress], None]:
        return lambda event: on_progress(offset + share * event.fraction, event.message) if on_progress else None

    start = time.monotonic()
    reports, logs, fitted_on = [], [], []
    profile = None
    if mode in ("umed-dataset", "umed-transfer"):
        count = len(studies) if mode == "umed-dataset" else max(1, int(round(len(studies) * transfer_fraction)))
        fitted_on = [s.name for s in studies[:count]]
        profile = fit_profile([(s.image, s.label) for s in studies[:count]], settings,
                              progress=relay(0.0, 0.8), cancel=cancel)
    elif mode != "umed-per-study":
        raise ValueError(f"unknown UMed mode {mode!r}; choose from {', '.join(UMED_MODES)}")
    protected = []
    for index, study in enumerate(studies):
        offset, share = (0.8 + 0.2 * index / len(studies), 0.2 / len(studies)) if profile is not None else (
            index / len(studies), 1.0 / len(studies))
        result = protect(study.image, study.label, spacing=None, settings=settings,
                         progress=relay(offset, share), cancel=cancel, profile=profile)
        protected.append(np.asarray(result.protected, dtype=np.float32))
        report = dict(result.report)
        reports.append({k: v for k, v in report.items() if k not in ("training", "settings")})
        log = _training_log(report, profile if index == 0 else None)
        if log and (profile is None or index == 0):
            logs.append({"study": study.name, **log})
    if profile is not None and not logs:
        logs.append(_training_log({}, profile))
    return protected, {
        "mode": mode,
        "description": UMED_MODES[mode],
        "settings": settings.to_dict(),
        "fitted_on": fitted_on,
        "engine_reports": reports,
        "surrogate_logs": logs,
        "seconds": time.monotonic() - start,
    }
