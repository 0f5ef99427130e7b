"""One row of the contrast ladder in its own process: one method's protected training split, victims at one level.

`umed-protect evaluate` trains the clean twins in every run; this script trains only the protected victims, so
rows can run side by side and be read against the clean row of an evaluate run with the same seed and steps
on the same machine (victim training on the CPU is deterministic for a seed on one machine, not across machines:
docs/results/contrast-ladder.md). Prints one JSON line.
"""

import argparse
import json

from UMedProtectLib.evaluation.config import EvaluationConfig
from UMedProtectLib.evaluation.harness import ladder_row
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
    config = EvaluationConfig(corpora=(args.corpus,), victims=("unet",), seeds=tuple(range(args.seeds)),
                              methods=(args.method,), epsilon=parse_epsilon(args.epsilon), sweep=(),
                              augmentations=(args.augmentation,), recipe=Recipe(steps=args.steps),
                              umed_preset=args.preset, device="cpu", threads=1)
    row = ladder_row(config)
    print(json.dumps({"corpus": row["corpus"], "method": row["method"], "augmentation": row["augmentation"],
                      "epsilon_255": row["epsilon_255"], "steps": args.steps, "stats": row["stats"],
                      "generation_log_tail": str(row["generation_log"])[-600:],
                      "dice": {v: r["mean"] for v, r in row["victims"].items()}, "groups": row["groups"]}))


if __name__ == "__main__":
    main()
