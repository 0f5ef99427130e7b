"""Which probe reads a keyed mark that a victim learnt: the key's own pattern, or only a cue every mark carries?

Trains one victim on the clean training split and one per amplitude on the split with the key's mark (the engine's
`mark_change`: +pattern in the ROI, -pattern on its outer band), then probes each with the key's and 99 control
marks on the faded test studies, four ways per mark: the mark as trained (+ in the ROI, - on the band), the mark
inverted (- in the ROI, + on the band), and the pattern alone over the whole slice with either sign. From the same
label maps it scores four statistics with the exact rank test:

- `contour`: the ROI response to the mark as trained (the audit's statistic today);
- `contour-sign`: that response minus the response to the inverted mark. A cue shared by every mark of the kind
  (a texture whose sign changes at the contour) is the same for both signs and cancels; what survives is the
  model's knowledge of which sign of *this* pattern goes with the target;
- `whole-sign`: the share of the ROI and band labelled with the pattern over the whole slice, + minus -: no contour
  in the mark at all, only whether this pattern pushes voxels towards the target;
- `both-sign`: the two sign statistics standardised and added.

Prints one JSON line per victim: Dice on the clean test split and each statistic's p-value, rank and effect size.

    OMP_NUM_THREADS=1 .venv/bin/python research/mark_probe_kinds.py --amplitudes 8,4,16 --clean --anchored
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from UMedProtectLib.evaluation.corpora.registry import load_corpus
from UMedProtectLib.evaluation.mark_audit import AuditSetup, evaluation_key, marked_split
from UMedProtectLib.evaluation.metrics import dice
from UMedProtectLib.evaluation.victim_training import Recipe, predict, train_victim
from UMedProtectLib.marks import MARKS
from UMedProtectLib.marks.embed import contour_sign, faded, outer_band, roi_response
from UMedProtectLib.marks.probes import mark_seeds
from UMedProtectLib.marks.statistics import mark_test, standardised


def probe_responses(model, corpus, key, setup: AuditSetup, device) -> dict:
    """(marks, studies) responses of every probe kind, and the key's row."""
    mark = MARKS[setup.mark]
    seeds, position = mark_seeds(key, "research", setup.controls)
    studies = corpus.test
    kinds = ("contour", "inverted", "whole", "whole-inverted")
    out = {kind: np.zeros((len(seeds), len(studies))) for kind in kinds}
    for column, study in enumerate(studies):
        roi = study.label > 0
        near = roi | outer_band(roi, 3)
        base = faded(study.image, roi, setup.fade)
        sign = contour_sign(roi)
        for row, seed in enumerate(seeds):
            pattern = setup.amplitude * mark.pattern(seed, roi.shape[-2:]).astype(np.float64)
            probes = np.stack([base + sign * pattern, base - sign * pattern, base + pattern, base - pattern])
            flat = np.clip(probes, 0, 1).reshape(-1, *roi.shape[-2:]).astype(np.float32)
            labelled = predict(model, flat, device).reshape(probes.shape) > 0
            out["contour"][row, column] = roi_response(labelled[0], roi)
            out["inverted"][row, column] = roi_response(labelled[1], roi)
            out["whole"][row, column] = np.count_nonzero(labelled[2] & near) / max(np.count_nonzero(roi), 1)
            out["whole-inverted"][row, column] = np.count_nonzero(labelled[3] & near) / max(np.count_nonzero(roi), 1)
    return out, position


def statistics(responses: dict, position: int) -> dict:
    """The rank test of each statistic."""
    contour_sign_diff = responses["contour"] - responses["inverted"]
    whole_sign_diff = responses["whole"] - responses["whole-inverted"]
    both = standardised(contour_sign_diff) + standardised(whole_sign_diff)
    tests = {"contour": responses["contour"], "contour-sign": contour_sign_diff, "whole-sign": whole_sign_diff,
             "both-sign": both}
    return {name: {k: v for k, v in mark_test(values, position).to_dict().items()
                   if k in ("p_value", "rank", "effect_size")} for name, values in tests.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="synth-faint")
    parser.add_argument("--victim", default="unet")
    parser.add_argument("--augmentation", default="flip")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mark", default="texture")
    parser.add_argument("--amplitudes", default="4,8")
    parser.add_argument("--clean", action="store_true", help="also probe the clean twin")
    parser.add_argument("--anchored", action="store_true", help="every study's tile at offset (0, 0)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    device = torch.device("cpu")
    corpus = load_corpus(args.corpus)
    key = evaluation_key(args.seed)
    labels = corpus.slices("train")[1]
    test_images, test_labels = corpus.slices("test")
    runs = [("clean", 0.0)] if args.clean else []
    runs += [("marked", float(a) / 255) for a in args.amplitudes.split(",")]
    for name, amplitude in runs:
        setup = AuditSetup(mark=args.mark, amplitude=amplitude or 4 / 255, anchored=args.anchored)
        images = marked_split(corpus, key, setup) if amplitude else corpus.slices("train")[0]
        start = time.monotonic()
        model = train_victim(args.victim, images, labels, Recipe(steps=args.steps), args.seed, device,
                             augmentation=args.augmentation).model
        trained = time.monotonic() - start
        responses, position = probe_responses(model, corpus, key, setup, device)
        print(json.dumps({"victim": name, "amplitude_255": setup.amplitude * 255, "train_seconds": round(trained),
                          "probe_seconds": round(time.monotonic() - start - trained),
                          "dice": dice(predict(model, test_images, device), test_labels),
                          **statistics(responses, position)}), flush=True)


if __name__ == "__main__":
    main()
