"""The audit as an evaluation axis: victims trained on marked (or clean) training studies, then queried with probe
studies made from the clean test split, and the exact rank test on their label maps."""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..marks import MARKS
from ..marks.embed import contour_sign, faded, mark_change, roi_response, study_offset
from ..marks.key import OwnerKey
from ..marks.probes import DEFAULT_CONTROLS, DEFAULT_FADE, DEFAULT_PROBE_GAIN, mark_seeds
from ..marks.statistics import mark_test
from .corpora.corpus import Corpus
from .defences import apply_defence
from .metrics import dice
from .nnunet_victim import CONFIGURATIONS as NNUNET_VICTIMS, NnUNetRecipe, NnUNetVictim
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
    anchored: bool = False  # every study's tile at offset (0, 0), as before the secret offsets (for comparison)


def evaluation_key(index: int) -> OwnerKey:
    """A reproducible key for the evaluation (never for a real owner: its secret is public)."""
    return OwnerKey(hashlib.sha256(f"umed-protect evaluation key {index}".encode()).digest())


def marked_studies(corpus: Corpus, key: OwnerKey, setup: AuditSetup) -> List[np.ndarray]:
    """The training studies with the key's mark on the ROI of the first `marked_share` of them."""
    mark = MARKS[setup.mark]
    count = int(round(setup.marked_share * len(corpus.train)))
    out = []
    for index, study in enumerate(corpus.train):
        image = study.image.astype(np.float64)
        if index < count:
            image = image + mark_change(mark, key.seed("mark"), study.label > 0, setup.amplitude,
                                        offset=(0, 0) if setup.anchored else study_offset(key, study.image))
        out.append(np.clip(image, 0.0, 1.0).astype(np.float32))
    return out


def marked_split(corpus: Corpus, key: OwnerKey, setup: AuditSetup) -> np.ndarray:
    """The training slices of `marked_studies`, stacked."""
    return np.concatenate(marked_studies(corpus, key, setup))


def average_and_subtract(studies: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                         sigma: float = 2.0) -> List[np.ndarray]:
    """The adaptive attacker who knows the method but not the key: the mark is one pattern, + in the ROI and - on
    its band, both of which the labels show; so each slice's fine detail (the image less its Gaussian blur), signed
    by the contour, is averaged over every slice into an estimate of the pattern, which is then subtracted where the
    mark would be. The anatomy's own detail averages towards zero; a mark at one position in every study does not
    (the secret offsets of marks/embed.py are there against this attacker)."""
    from scipy import ndimage

    signs = [contour_sign(label > 0) for label in labels]
    details = [image - ndimage.gaussian_filter(image.astype(np.float64), (0, sigma, sigma)) for image in studies]
    weight = sum(np.abs(sign).sum(axis=0) for sign in signs)
    estimate = sum((sign * detail).sum(axis=0) for sign, detail in zip(signs, details))
    estimate = np.divide(estimate, weight, out=np.zeros_like(estimate), where=weight > 0)
    return [np.clip(image - sign * estimate, 0.0, 1.0).astype(np.float32) for image, sign in zip(studies, signs)]


@dataclass(frozen=True)
class Probes:
    """The probe volumes of one audit (marks x studies, after the attacker's preprocessing) and what reads them."""

    volumes: List[np.ndarray]  # row-major over (marks, studies)
    rois: List[np.ndarray]  # each study's ROI
    position: int  # the key's row

    def test(self, predictions: Sequence[np.ndarray]) -> Dict:
        """The exact rank test on the suspect's label maps of `volumes`, in the same order."""
        marks = len(self.volumes) // len(self.rois)
        responses = np.array([roi_response(prediction, self.rois[index % len(self.rois)])
                              for index, prediction in enumerate(predictions)]).reshape(marks, len(self.rois))
        return {"predictions": len(self.volumes), **mark_test(responses, self.position).to_dict()}


def probes_for(corpus: Corpus, key: OwnerKey, setup: AuditSetup, defence: str, nonce: str = "evaluation") -> Probes:
    """The key's and the controls' marks on the faded test studies, after the attacker's preprocessing (which his
    pipeline applies to every image it segments)."""
    mark = MARKS[setup.mark]
    seeds, position = mark_seeds(key, nonce, setup.controls)
    studies = corpus.test[:setup.probe_studies]
    rois = [study.label > 0 for study in studies]
    bases = [faded(study.image, roi, setup.fade) for study, roi in zip(studies, rois)]
    amplitude = setup.probe_gain * setup.amplitude
    volumes = [apply_defence(defence, np.clip(base + mark_change(mark, seed, roi, amplitude), 0, 1))
               for seed in seeds for base, roi in zip(bases, rois)]
    return Probes(volumes, rois, position)


def segmenter(model: torch.nn.Module, device: torch.device) -> Callable[[Sequence[np.ndarray]], List[np.ndarray]]:
    """A trained repository victim as a function of volumes to label maps (slice by slice, as it was trained)."""
    def segment(volumes: Sequence[np.ndarray]) -> List[np.ndarray]:
        flat = predict(model, np.concatenate(volumes).astype(np.float32), device)
        return np.split(flat, np.cumsum([len(volume) for volume in volumes])[:-1])
    return segment


def audit_victim(model: torch.nn.Module, corpus: Corpus, key: OwnerKey, setup: AuditSetup, defence: str,
                 device: torch.device, nonce: str = "evaluation") -> Dict:
    """Probe a trained repository victim with the key's and the controls' marks and test the key's rank."""
    probes = probes_for(corpus, key, setup, defence, nonce)
    return probes.test(segmenter(model, device)(probes.volumes))


def validity(model: torch.nn.Module, corpus: Corpus, setup: AuditSetup, defence: str, device: torch.device,
             keys: int) -> Dict:
    """The audit of one model never trained on any of `keys` evaluation keys, once per key: the share of audits
    that reject at 0.01 and 0.05 is the false-positive rate (each audit's p-value is exact by construction; this
    checks the implementation)."""
    return null_rates([audit_victim(model, corpus, evaluation_key(1000 + index), setup, defence, device)["p_value"]
                       for index in range(keys)])


def null_rates(p_values: Sequence[float]) -> Dict:
    """The p-values of audits of models never trained on their keys, and the share rejected at 0.01 and 0.05."""
    p_values = [float(p) for p in p_values]
    return {"keys": len(p_values), "p_values": p_values,
            "false_positive_rate": {str(alpha): float(np.mean(np.array(p_values) <= alpha)) for alpha in (0.01, 0.05)}}


def visibility_of_marks(corpus: Corpus, key: OwnerKey, setup: AuditSetup) -> Dict:
    """PSNR and the ROI's and band's texture ratio of the marked training split (the report's figures)."""
    from ..method.measures.texture_change import texture_ratios

    clean, labels = corpus.slices("train")
    marked = marked_split(corpus, key, setup)
    mse = float(np.mean((marked.astype(np.float64) - clean) ** 2))
    return {"psnr_db": float(10 * np.log10(1.0 / mse)) if mse > 0 else None,
            **texture_ratios(clean, marked, labels > 0, 3)}


def train_and_segment(victim: str, studies: List[np.ndarray], corpus: Corpus, volumes: List[np.ndarray],
                      recipe: Recipe, nnunet: NnUNetRecipe, seed: int, augmentation: str,
                      device: torch.device) -> Tuple[List[np.ndarray], float]:
    """A victim trained with `seed` on the training `studies` (labels unchanged), then asked to segment `volumes`;
    nnU-Net learns only the volumes' names before training (its worker predicts a folder when it has trained)."""
    labels = [study.label for study in corpus.train]
    if victim in NNUNET_VICTIMS:
        trainer = NnUNetVictim(victim, studies, labels, volumes, nnunet, device.type)
        try:
            return trainer.train_and_predict(seed)
        finally:
            trainer.close()
    start = time.monotonic()
    model = train_victim(victim, np.concatenate(studies), np.concatenate(labels), recipe, seed, device,
                         augmentation=augmentation).model
    return segmenter(model, device)(volumes), time.monotonic() - start


def markdown_table(result: Dict) -> str:
    """The power rows of a data file as the Markdown table docs/audit.md shows (figures rounded, nothing added)."""
    lines = ["| defence | seed | amplitude | marked | PSNR dB | texture ROI | Dice clean -> marked | key's rank | p "
             "| p clean twin | p other key |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in result["power"]:
        other = row.get("other_key_audit", {}).get("p_value")
        lines.append(
            f"| {row['defence']} | {row['seed']} | {row['amplitude_255']:g}/255 | {row['marked_share']:.0%} "
            f"| {row['visibility']['psnr_db']:.1f} | x{row['visibility']['roi_texture_ratio']:.2f} "
            f"| {row['clean_dice']:.3f} -> {row['marked_dice']:.3f} "
            f"| {row['power']['rank']} of {row['power']['marks']} "
            f"| {row['power']['p_value']:.2f} | {row['clean_twin_audit']['p_value']:.2f} "
            f"| {'' if other is None else f'{other:.2f}'} |")
    return "\n".join(lines)


def _write_atomic(path, data: Dict) -> None:
    """The data file written whole through the project's write transaction (rewritten as each row finishes)."""
    import json

    from ..files.transaction import OutputTransaction

    with OutputTransaction(overwrite=True) as transaction:
        transaction.stage(path).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
        transaction.commit()


def main(argv=None) -> int:
    """`python -m UMedProtectLib.evaluation.mark_audit --out FILE.json`: power per defence, seed, amplitude and
    share of marked training studies, and validity on each clean twin, for one victim (a repository victim or
    nnU-Net through its own pipeline), corpus and augmentation; writes the data file the docs page cites, row by
    row."""
    import argparse
    import json
    import platform
    from dataclasses import asdict
    from pathlib import Path

    from .corpora.registry import load_corpus

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, help="the data file to write")
    parser.add_argument("--table", type=Path, metavar="DATA.json", help="only print a data file's Markdown table")
    parser.add_argument("--corpus", default="synth-faint")
    parser.add_argument("--victim", default="unet", help="a repository victim or nnunet-2d / nnunet-3d")
    parser.add_argument("--augmentation", default="flip", help="the repository victims' level (nnU-Net: its own)")
    parser.add_argument("--defences", default="none", help="comma-separated attacker's preprocessing")
    parser.add_argument("--steps", type=int, default=300, help="repository victims' optimiser steps")
    parser.add_argument("--nnunet-epochs", type=int, default=2, help="of 250 batches")
    parser.add_argument("--seeds", default="0", help="comma-separated")
    parser.add_argument("--anchored", action="store_true", help="mark every study at tile offset (0, 0)")
    parser.add_argument("--adaptive", action="store_true",
                        help="the attacker also averages the marked studies to estimate the mark and subtracts it")
    parser.add_argument("--mark", default="texture", choices=sorted(MARKS))
    parser.add_argument("--amplitudes", default="4,8,16", help="of 255, comma-separated")
    parser.add_argument("--marked-shares", default="1", help="shares of the training studies marked, comma-separated")
    parser.add_argument("--probe-studies", type=int, default=2, help="held-out studies probed (x 100 predictions)")
    parser.add_argument("--validity-keys", type=int, default=100, help="other keys each clean twin is audited with")
    parser.add_argument("--validity-studies", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    if args.table is not None:
        print(markdown_table(json.loads(args.table.read_text())))
        return 0
    if args.out is None:
        parser.error("--out is required to measure")
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    corpus = load_corpus(args.corpus)
    recipe, nnunet = Recipe(steps=args.steps), NnUNetRecipe(epochs=args.nnunet_epochs)
    given = sys.argv[1:] if argv is None else list(argv)
    result = {"command": "python -m UMedProtectLib.evaluation.mark_audit " + " ".join(given),
              "corpus": args.corpus, "victim": args.victim, "augmentation": args.augmentation, "steps": args.steps,
              "nnunet_epochs": args.nnunet_epochs, "adaptive": args.adaptive, "mark": args.mark,
              "machine": platform.processor() or "cpu", "date": time.strftime("%Y-%m-%d"), "power": [], "validity": []}
    setups = [AuditSetup(mark=args.mark, amplitude=float(a) / 255, marked_share=float(share),
                         probe_studies=args.probe_studies, anchored=args.anchored)
              for a in args.amplitudes.split(",") if a for share in args.marked_shares.split(",")]
    null_setup = replace(setups[0] if setups else AuditSetup(mark=args.mark), probe_studies=args.validity_studies)
    _, test_labels = corpus.slices("test")
    for defence in args.defences.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            key = evaluation_key(seed)
            seen = [apply_defence(defence, study.image) for study in corpus.test]

            def attacked(studies: List[np.ndarray]) -> List[np.ndarray]:
                if args.adaptive:
                    studies = average_and_subtract(studies, [study.label for study in corpus.train])
                return [apply_defence(defence, image, study.label, seed) for image, study in zip(studies, corpus.train)]

            def score(predictions: List[np.ndarray]) -> float:
                return dice(np.concatenate(predictions[:len(seen)]), test_labels)

            key_probes = {setup: probes_for(corpus, key, setup, defence) for setup in setups}
            null_probes = [probes_for(corpus, evaluation_key(1000 + index), null_setup, defence)
                           for index in range(args.validity_keys)]
            asked = seen + [v for probes in list(key_probes.values()) + null_probes for v in probes.volumes]
            answers, seconds = train_and_segment(args.victim, attacked([s.image for s in corpus.train]), corpus, asked,
                                                 recipe, nnunet, seed, args.augmentation, device)
            clean_dice, answers = score(answers), answers[len(seen):]
            twin_audits = {}
            for setup, probes in key_probes.items():
                twin_audits[setup], answers = probes.test(answers[:len(probes.volumes)]), answers[len(probes.volumes):]
            nulls = []
            for probes in null_probes:
                nulls.append(probes.test(answers[:len(probes.volumes)])["p_value"])
                answers = answers[len(probes.volumes):]
            if nulls:
                result["validity"].append({"defence": defence, "seed": seed, **null_rates(nulls)})
            for setup, probes in key_probes.items():
                # The same victim audited with a key it was not trained on: the null of "trained on another
                # owner's mark of the same kind".
                other = probes_for(corpus, evaluation_key(2000 + seed), setup, defence)
                answers, marked_seconds = train_and_segment(
                    args.victim, attacked(marked_studies(corpus, key, setup)), corpus,
                    seen + probes.volumes + other.volumes, recipe, nnunet, seed, args.augmentation, device)
                split = len(seen) + len(probes.volumes)
                mine, others = answers[len(seen):split], answers[split:]
                result["power"].append({
                    "defence": defence, "seed": seed, "amplitude_255": setup.amplitude * 255,
                    "marked_share": setup.marked_share, "setup": asdict(setup), "clean_dice": clean_dice,
                    "marked_dice": score(answers), "seconds": {"clean": seconds, "marked": marked_seconds},
                    "visibility": visibility_of_marks(corpus, key, setup), "power": probes.test(mine),
                    "clean_twin_audit": twin_audits[setup], "other_key_audit": other.test(others)})
                print(json.dumps({k: v for k, v in result["power"][-1].items() if k != "setup"}), flush=True)
                _write_atomic(args.out, result)
    _write_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
