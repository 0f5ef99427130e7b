"""`umed-protect evaluate`: the command-line front of the evaluation (the CLI module calls add_arguments and run)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Dict, Optional, Tuple

from ..cli.version import add_version
from ..errors import Cancelled, InputError
from ..progress import BarReporter, JsonLinesReporter
from ..settings import DEVICES, PRESETS, parse_epsilon
from .augmentation import ALL_LEVELS
from .config import CORPORA, METHODS, EvaluationConfig, full_config, quick_config
from .defences import NAMES as DEFENCES
from .nnunet_victim import CONFIGURATIONS as NNUNET_VICTIMS, check_installed
from .victims import VICTIMS

ALL_VICTIMS = tuple(VICTIMS) + tuple(NNUNET_VICTIMS)


def _names(text: str, allowed, what: str) -> Tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise InputError(f"unknown {what} {', '.join(unknown) or repr(text)}; choose from {', '.join(allowed)}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `umed-protect evaluate`."""
    parser.add_argument("--quick", action="store_true",
                        help="reduced run for CI (nuclei and synth-faint, one victim, one seed, augmentation none)")
    # --output-dir as in demo and protect-dataset; --output and -o are the spellings of earlier versions.
    parser.add_argument("--output-dir", "--output", "-o", default="umed-evaluation", metavar="DIR",
                        help="folder for evaluation.json, evaluation.md and evaluation.png (created if missing) "
                        "[./umed-evaluation]")
    parser.add_argument("--corpora", help=f"comma-separated corpora from: {', '.join(CORPORA)}")
    parser.add_argument("--dataset", metavar="DIR_OR_CSV",
                        help="also evaluate on your own studies: a CSV with columns image,label, a folder with images/ "
                        "and labels/, or a folder of NAME + NAME_label pairs (as fit-profile reads); split by study")
    parser.add_argument("--augmentation",
                        help=f"comma-separated victim augmentation levels from: {', '.join(ALL_LEVELS)} (none = no "
                        "augmentation, flip = random flips, full = flips, rotation, scaling, intensity, nnunet = "
                        "nnU-Net's own default pipeline; default none,flip,full, quick none); each level has its own "
                        "clean twin")
    parser.add_argument("--defences",
                        help=f"comma-separated preprocessing the attacker applies to every training and test image, "
                        f"from: {', '.join(DEFENCES)} (default none); each has its own clean twin")
    parser.add_argument("--victims", help=f"comma-separated victim networks from: {', '.join(ALL_VICTIMS)} "
                        "(the nnU-Net ones need --augmentation nnunet)")
    parser.add_argument("--nnunet-epochs", type=int, help="nnU-Net victims' epochs (default 4)")
    parser.add_argument("--nnunet-iterations", type=int, help="nnU-Net victims' batches per epoch (default 250)")
    parser.add_argument("--seeds", type=int, help="number of victim seeds per (method, victim) (default 3)")
    parser.add_argument("--methods", help=f"comma-separated protections from: {', '.join(METHODS)}")
    parser.add_argument("--epsilon", help="budget of the main table, e.g. 4/255")
    parser.add_argument("--sweep", help="comma-separated epsilons of the sweep, e.g. 2/255,4/255,8/255,16/255; 'none'")
    parser.add_argument("--sweep-methods",
                        help="methods run at every sweep epsilon (default em-pgd,umed-dataset,umed-carrier-dataset)")
    parser.add_argument("--steps", type=int, help="victim training steps (default 400, quick 150)")
    parser.add_argument("--preset", choices=sorted(PRESETS), help="UMed quality preset for the engine")
    parser.add_argument("--iterations", type=int, help="UMed training iterations (overrides the preset)")
    parser.add_argument("--device", choices=DEVICES, default="auto", help="compute device (default auto)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0 = torch's default)")
    parser.add_argument("--progress", choices=("bar", "json", "none"), default="bar",
                        help="progress on stderr as a bar, as JSON lines on stdout, or none")


def config_from_args(args: argparse.Namespace) -> EvaluationConfig:
    """The preset (quick or full) with the options given on the command line applied."""
    config = quick_config() if args.quick else full_config()
    changes: Dict = {"device": args.device, "threads": args.threads}
    if args.corpora:
        changes["corpora"] = _names(args.corpora, CORPORA, "corpus")
    if args.dataset:
        changes["dataset"] = args.dataset
        if not args.corpora:
            changes["corpora"] = ()  # the owner's data alone unless corpora are named too
    if args.augmentation:
        changes["augmentations"] = _names(args.augmentation, ALL_LEVELS, "augmentation level")
        if "nnunet" in changes["augmentations"]:
            check_installed()
    if args.defences:
        changes["defences"] = _names(args.defences, DEFENCES, "defence")
    if args.victims:
        changes["victims"] = _names(args.victims, ALL_VICTIMS, "victim")
        if set(changes["victims"]) & set(NNUNET_VICTIMS):
            if changes.get("augmentations", config.augmentations) != ("nnunet",):
                raise InputError("the nnU-Net victims train with nnU-Net's own augmentation: add --augmentation "
                                 "nnunet (the other victims then train with that same pipeline)")
    for option, value in (("--nnunet-epochs", args.nnunet_epochs), ("--nnunet-iterations", args.nnunet_iterations)):
        if value is not None and value < 1:
            raise InputError(f"{option} must be at least 1")
    if args.nnunet_epochs or args.nnunet_iterations:
        changes["nnunet"] = replace(config.nnunet, epochs=args.nnunet_epochs or config.nnunet.epochs,
                                    iterations=args.nnunet_iterations or config.nnunet.iterations)
    if args.seeds is not None:
        if args.seeds < 1:
            raise InputError("--seeds must be at least 1")
        changes["seeds"] = tuple(range(args.seeds))
    if args.methods:
        changes["methods"] = _names(args.methods, METHODS, "method")
    if args.epsilon:
        changes["epsilon"] = parse_epsilon(args.epsilon)
    if args.sweep:
        changes["sweep"] = (() if args.sweep.strip() == "none"
                            else tuple(parse_epsilon(e) for e in args.sweep.split(",")))
    if args.sweep_methods:
        changes["sweep_methods"] = _names(args.sweep_methods, METHODS, "method")
    if args.steps is not None:
        if args.steps < 1:
            raise InputError("--steps must be at least 1")
        changes["recipe"] = replace(config.recipe, steps=args.steps)
    if args.preset:
        changes["umed_preset"] = args.preset
    if args.iterations is not None:
        if args.iterations < 0:
            raise InputError("--iterations must be 0 or more")
        changes["umed_iterations"] = args.iterations
    return config.with_changes(**changes)


def _print_estimate(estimate: Dict) -> None:
    minutes = estimate["seconds"] / 60
    parts = ", ".join(f"{name} {(c['training_seconds'] + c['generation_seconds']) / 60:.0f} min"
                      for name, c in estimate["per_corpus"].items())
    print(f"umed-protect evaluate: expected duration about {minutes:.0f} min on this machine ({parts}); "
          f"measured from victim step times, generation roughly estimated", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    """Run the evaluation; print the table; 0 on success, 2 on bad input, 130 when cancelled."""
    from .api import run_evaluation

    try:
        config = config_from_args(args)
        reporter: Optional[object] = {"bar": BarReporter(), "json": JsonLinesReporter(), "none": None}[args.progress]
        results = run_evaluation(config, Path(args.output_dir), progress=reporter, on_estimate=_print_estimate)
    except InputError as error:
        print(f"umed-protect evaluate: error: {error}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):  # KeyboardInterrupt: Ctrl+C or SIGTERM (cli.main)
        print("umed-protect evaluate: cancelled", file=sys.stderr)
        return 130
    if args.progress != "json":
        print(results["table_markdown"])
        print(f"\nwrote {', '.join(results['outputs'].values())}")
    return 0


def main(argv=None) -> int:
    """Standalone entry (python -m UMedProtectLib.evaluation.command), the same as `umed-protect evaluate`."""
    parser = argparse.ArgumentParser(prog="umed-protect evaluate", description=__doc__)
    add_arguments(parser)
    add_version(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
