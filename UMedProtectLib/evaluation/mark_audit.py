"""The audit as an evaluation axis: victims trained on marked (or clean) training studies, then queried with probe
studies made from the clean test split, and the exact rank test on their label maps."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch

from ..marks import MARKS
from ..marks.embed import faded, mark_change, roi_response
from ..marks.key import OwnerKey
from ..marks.probes import DEFAULT_CONTROLS, DEFAULT_FADE, DEFAULT_PROBE_GAIN, mark_seeds
from ..marks.statistics import mark_test
from .corpora.corpus import Corpus
from .defences import apply_defence
from .metrics import dice
from .victim_training import Recipe, predict, train_victim


@dataclass(frozen=True)
class AuditSetup:
    """One audit run: which mark, how strong, on how much of the training split, tested with how many controls."""

    mark: str = "texture"
    amplitude: float = 4 / 255  # in the corpus's [0, 1] units
    marked_share: float = 1.0  # of the training studies
    controls: int = DEFAULT_CONTROLS
    fade: float = DEFAULT_FADE
    probe_gain: float = DEFAULT_PROBE_GAIN  # the probes' mark amplitude over the training one
    probe_studies: Optional[int] = None  # None: every test study


def evaluation_key(index: int) -> OwnerKey:
    """A reproducible key for the evaluation (never for a real owner: its secret is public)."""
    return OwnerKey(hashlib.sha256(f"umed-protect evaluation key {index}".encode()).digest())


def marked_split(corpus: Corpus, key: OwnerKey, setup: AuditSetup) -> np.ndarray:
    """The training slices with the key's mark on the ROI of the first `marked_share` of the studies."""
    mark = MARKS[setup.mark]
    count = int(round(setup.marked_share * len(corpus.train)))
    out = []
    for index, study in enumerate(corpus.train):
        image = study.image.astype(np.float64)
        if index < count:
            image = image + mark_change(mark, key.seed("mark"), study.label > 0, setup.amplitude)
        out.append(np.clip(image, 0.0, 1.0).astype(np.float32))
    return np.concatenate(out)


def audit_victim(model: torch.nn.Module, corpus: Corpus, key: OwnerKey, setup: AuditSetup, defence: str,
                 device: torch.device, nonce: str = "evaluation") -> Dict:
    """Probe a trained victim with the key's and the controls' marks on the faded test studies (after the
    attacker's preprocessing, which his pipeline applies to every image it segments) and test the key's rank."""
    mark = MARKS[setup.mark]
    seeds, position = mark_seeds(key, nonce, setup.controls)
    studies = corpus.test[:setup.probe_studies]
    responses = np.zeros((len(seeds), len(studies)))
    for column, study in enumerate(studies):
        roi = study.label > 0
        base = faded(study.image, roi, setup.fade)
        amplitude = setup.probe_gain * setup.amplitude
        probes = np.stack([np.clip(base + mark_change(mark, seed, roi, amplitude), 0, 1) for seed in seeds])
        flat = apply_defence(defence, probes.reshape(-1, *probes.shape[2:]).astype(np.float32))
        predictions = predict(model, flat, device).reshape(probes.shape)
        responses[:, column] = [roi_response(prediction, roi) for prediction in predictions]
    return {"predictions": len(seeds) * len(studies), **mark_test(responses, position).to_dict()}


def audit_run(corpus: Corpus, victim: str, augmentation: str, defence: str, recipe: Recipe, seed: int,
              setup: AuditSetup, key_index: int, device: torch.device) -> Dict:
    """Train `victim` on the marked training split (after `defence`) and on the clean one (its twin), score both on
    the clean test split and audit both with key `key_index`: the marked one for power, the clean one for validity."""
    key = evaluation_key(key_index)
    clean, labels = corpus.slices("train")
    test_images, test_labels = corpus.slices("test")
    test_seen = apply_defence(defence, test_images)
    out: Dict = {"corpus": corpus.name, "victim": victim, "augmentation": augmentation, "defence": defence,
                 "steps": recipe.steps, "seed": seed, "key": key_index, "mark": setup.mark,
                 "amplitude_255": setup.amplitude * 255, "marked_share": setup.marked_share,
                 "controls": setup.controls, "fade": setup.fade}
    for name, images in (("marked", marked_split(corpus, key, setup)), ("clean", clean)):
        start = time.monotonic()
        trained = train_victim(victim, apply_defence(defence, images, labels, seed), labels, recipe, seed, device,
                               augmentation=augmentation)
        out[name] = {"dice": dice(predict(trained.model, test_seen, device), test_labels),
                     "train_seconds": time.monotonic() - start,
                     "audit": audit_victim(trained.model, corpus, key, setup, defence, device)}
    return out
