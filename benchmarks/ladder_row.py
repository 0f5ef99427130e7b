"""One row of the contrast ladder in its own process: one method's protected training split, victims at one level.

`umed-protect evaluate` trains the clean twins in every run; this script trains only the protected victims, so
rows can run side by side and be read against the clean row of an evaluate run with the same seed and steps
on the same machine (victim training on the CPU is deterministic for a seed on one machine, not across machines:
README, the contrast ladder). Prints one JSON line.
"""

import argparse
import json

import torch

from UMedProtectLib.evaluation.config import EvaluationConfig
from UMedProtectLib.evaluation.corpora.registry import load_corpus
from UMedProtectLib.evaluation.harness import _Tracker, _generate, _group_means, _train_all
from UMedProtectLib.evaluation.victim_training import Recipe
from UMedProtectLib.settings import parse_epsilon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpus", default="synth-contrast")
    parser.add_argument("--method", required=True)
    parser.add_argument("--augmentation", required=True)
    parser.add_argument("--epsilon", default="4/255")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    epsilon = parse_epsilon(args.epsilon)
    config = EvaluationConfig(corpora=(args.corpus,), victims=("unet",), seeds=tuple(range(args.seeds)),
                              methods=(args.method,), epsilon=epsilon, sweep=(), augmentations=(args.augmentation,),
                              recipe=Recipe(steps=args.steps), umed_preset=args.preset, device="cpu", threads=1)
    corpus = load_corpus(args.corpus, epsilon=epsilon)
    device = torch.device("cpu")
    tracker = _Tracker(1.0, None)
    generated = _generate(args.method, epsilon, corpus, config, device, tracker, 0.0, None)
    victims = _train_all(corpus, generated["protected"], args.augmentation, config, device, tracker, "", None)
    print(json.dumps({"corpus": args.corpus, "method": args.method, "augmentation": args.augmentation,
                      "epsilon_255": epsilon * 255, "steps": args.steps, "stats": generated["stats"],
                      "generation_log_tail": str(generated["log"])[-600:],
                      "dice": {v: r["mean"] for v, r in victims.items()}, "groups": _group_means(victims)}))


if __name__ == "__main__":
    main()
