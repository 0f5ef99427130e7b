"""The audit as an evaluation axis: victims trained on marked (or clean) training studies, then queried with probe
studies made from the clean test split, and the exact rank test on their label maps."""

from __future__ import annotations

import hashlib
import sys
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


def validity(model: torch.nn.Module, corpus: Corpus, setup: AuditSetup, defence: str, device: torch.device,
             keys: int) -> Dict:
    """The audit of one model never trained on any of `keys` evaluation keys, once per key: the share of audits
    that reject at 0.01 and 0.05 is the false-positive rate (each audit's p-value is exact by construction; this
    checks the implementation)."""
    p_values = [audit_victim(model, corpus, evaluation_key(1000 + index), setup, defence, device)["p_value"]
                for index in range(keys)]
    return {"keys": keys, "p_values": p_values,
            "false_positive_rate": {str(alpha): float(np.mean(np.array(p_values) <= alpha)) for alpha in (0.01, 0.05)}}


def visibility_of_marks(corpus: Corpus, key: OwnerKey, setup: AuditSetup) -> Dict:
    """PSNR and the ROI's and band's texture ratio of the marked training split (the report's figures)."""
    from ..method.measures.texture_change import texture_ratios

    clean, labels = corpus.slices("train")
    marked = marked_split(corpus, key, setup)
    mse = float(np.mean((marked.astype(np.float64) - clean) ** 2))
    return {"psnr_db": float(10 * np.log10(1.0 / mse)) if mse > 0 else None,
            **texture_ratios(clean, marked, labels > 0, 3)}


def main(argv=None) -> int:
    """`python -m UMedProtectLib.evaluation.mark_audit --out FILE.json`: power at several amplitudes and validity on
    the clean twin, for one victim, corpus, augmentation and defence; writes the data file the docs page cites."""
    import argparse
    import json
    import platform
    from dataclasses import asdict, replace
    from pathlib import Path

    from .corpora.registry import load_corpus

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--corpus", default="synth-faint")
    parser.add_argument("--victim", default="unet")
    parser.add_argument("--augmentation", default="flip")
    parser.add_argument("--defence", default="none")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mark", default="texture", choices=sorted(MARKS))
    parser.add_argument("--amplitudes", default="4,8,16", help="of 255, comma-separated")
    parser.add_argument("--validity-keys", type=int, default=100)
    parser.add_argument("--validity-studies", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    corpus = load_corpus(args.corpus)
    recipe = Recipe(steps=args.steps)
    key = evaluation_key(args.seed)
    labels = corpus.slices("train")[1]
    test_images, test_labels = corpus.slices("test")
    test_seen = apply_defence(args.defence, test_images)

    def trained(images: np.ndarray) -> Dict:
        start = time.monotonic()
        model = train_victim(args.victim, apply_defence(args.defence, images, labels, args.seed), labels, recipe,
                             args.seed, device, augmentation=args.augmentation).model
        return {"model": model, "dice": dice(predict(model, test_seen, device), test_labels),
                "train_seconds": time.monotonic() - start}

    rows = []
    setup = AuditSetup(mark=args.mark)
    clean = trained(corpus.slices("train")[0])
    for amplitude in (float(a) / 255 for a in args.amplitudes.split(",")):
        setup = replace(setup, amplitude=amplitude)
        marked = trained(marked_split(corpus, key, setup))
        rows.append({"amplitude_255": amplitude * 255, "setup": asdict(setup), "clean_dice": clean["dice"],
                     "marked_dice": marked["dice"], "train_seconds": marked["train_seconds"],
                     "visibility": visibility_of_marks(corpus, key, setup),
                     "power": audit_victim(marked["model"], corpus, key, setup, args.defence, device),
                     "clean_twin_audit": audit_victim(clean["model"], corpus, key, setup, args.defence, device)})
        print(json.dumps(rows[-1]), flush=True)
    null_setup = replace(setup, probe_studies=args.validity_studies)
    given = sys.argv[1:] if argv is None else list(argv)
    result = {"command": "python -m UMedProtectLib.evaluation.mark_audit " + " ".join(given),
              "corpus": args.corpus, "victim": args.victim, "augmentation": args.augmentation, "defence": args.defence,
              "steps": args.steps, "seed": args.seed, "mark": args.mark, "machine": platform.processor() or "cpu",
              "date": time.strftime("%Y-%m-%d"), "power": rows,
              "validity": (validity(clean["model"], corpus, null_setup, args.defence, device, args.validity_keys)
                           if args.validity_keys else None)}
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
