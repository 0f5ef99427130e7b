"""The `umed-protect` command line: argument parsing, exit codes and error messages.

Exit codes: 0 success; 2 bad input or usage (one line `umed-protect: error: ...` on stderr); 1 internal
error (a short message; --debug shows the traceback); 130 cancelled (Ctrl+C or SIGTERM). On any failure no
output file is left behind, and input files are never modified. A standard output that fails, or a cancel that
arrives, after the outputs were written keeps the run's exit code (0), with one warning line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import traceback
from typing import Dict, List, Optional, Sequence

from ..errors import Cancelled, InputError, StandardOutputError, SummaryNotPrinted
from ..files.formats import IMAGE_EXTENSIONS, LABEL_KINDS
from ..settings import COMMAND_LINE
from .version import PROG, add_version

# Options whose values may start with '-' (a negative window level, a mistyped negative budget).
SIGNED_VALUE_OPTIONS = tuple(option.flag_name for option in COMMAND_LINE if option.signed)


class UsageError(Exception):
    """A command-line usage mistake (argparse's errors), reported like InputError."""


class GuardedOutput:
    """The standard output during a command: a failed write stops the run with one line, not a traceback."""

    def __init__(self, stream):
        self.stream = stream

    def _guard(self, call, *args):
        try:
            return call(*args)
        except OSError as error:
            raise StandardOutputError(error.strerror or str(error)) from None

    def write(self, text: str) -> int:
        """Write, or raise StandardOutputError."""
        return self._guard(self.stream.write, text)

    def flush(self) -> None:
        """Flush, or raise StandardOutputError."""
        self._guard(self.stream.flush)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)

    def discard(self) -> None:
        """Send what is left (and Python's flush at exit) to the null device, so that no second error follows."""
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (a test's capture)
            pass


class Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors instead of a usage block and sys.exit."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def add_settings_arguments(parser: argparse.ArgumentParser, only: Optional[Sequence[str]] = None) -> None:
    """Options that set the protection (all optional; defaults in brackets), generated from the settings table;
    `only` keeps the named settings."""
    group = parser.add_argument_group("protection settings")
    exclusive: Dict[str, argparse._MutuallyExclusiveGroup] = {}
    for option in COMMAND_LINE:
        if only is not None and option.name not in only:
            continue
        if option.exclusive is not None and option.exclusive not in exclusive:
            exclusive[option.exclusive] = group.add_mutually_exclusive_group()
        target = group if option.exclusive is None else exclusive[option.exclusive]
        target.add_argument(option.flag_name, dest=option.name, metavar=option.metavar, type=option.argument_type,
                            choices=list(option.choices) or None, help=option.help_text())


def add_run_arguments(parser: argparse.ArgumentParser, overwrite: bool = True) -> None:
    """Options about how a run reports itself."""
    parser.add_argument("--progress", choices=["bar", "json", "none"], default="bar",
                        help="bar on stderr, one JSON object per line on stdout (stage, fraction, message), or none "
                             "[bar]")
    if overwrite:
        parser.add_argument("--overwrite", action="store_true", help="replace existing output files")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an internal error")


def build_parser(with_evaluation: bool = False) -> Parser:
    """The parser; the evaluate subcommand's options are loaded only when it is used."""
    parser = Parser(prog=PROG, description="Protect medical image segmentation studies with UMed unlearnable "
                    "perturbations: a change within an L-infinity budget, inside the region of interest and along its "
                    "contour. How visible it is depends on the window it is read in: every report states it per "
                    "reading window and warns where a display shows it.")
    add_version(parser)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an internal error")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    protect = commands.add_parser("protect", help="protect one study (image + label map)",
                                  description=f"Protect one study. Files: {' '.join(IMAGE_EXTENSIONS)}; "
                                  "labels: plain label maps in those, or Slicer .seg.nrrd. DICOM: the image as a "
                                  "series' folder or DICOMDIR, the label as a DICOM SEG or RTSTRUCT, the output as a "
                                  "folder (a new derived series; no de-identification). The output keeps the input's "
                                  "voxel type, geometry and metadata; only the region of interest and its contour "
                                  "band change.")
    protect.add_argument("--image", required=True, help="the image to protect (a file, or a DICOM folder/DICOMDIR)")
    protect.add_argument("--label", required=True, help=f"its label: {LABEL_KINDS}")
    protect.add_argument("--output", required=True,
                         help="the protected image to write (a folder for a derived DICOM series)")
    protect.add_argument("--series-uid", metavar="UID", help="the DICOM series to protect when --image holds several")
    protect.add_argument("--segments", metavar="LIST",
                         help="SEG segments or RTSTRUCT ROIs to protect, by name or number, comma-separated; they "
                              "become labels 1..n in this order [all]")
    protect.add_argument("--difference", help="also write the signed difference (protected - image, native units)")
    protect.add_argument("--report", help="also write a JSON report (quality figures, settings, SHA-256 of inputs)")
    protect.add_argument("--preview", metavar="PNG", help="also write a PNG: original, protected, difference")
    source = protect.add_mutually_exclusive_group()
    source.add_argument("--profile", metavar="P", help="apply this protection profile (no training)")
    source.add_argument("--profile-out", metavar="P", help="save the generators fitted on this study as a profile")
    add_mark_argument(protect)
    add_settings_arguments(protect)
    add_run_arguments(protect)

    fit = commands.add_parser("fit-profile", help="fit a protection profile on a dataset",
                              description="Fit one protection profile on many image/label pairs, to apply later "
                              "with `protect --profile`. DATASET: a CSV with columns image,label; a folder with "
                              "images/ and labels/ of same-named files; or a folder of NAME.ext + NAME_label.ext "
                              "(or NAME_seg.ext, NAME.seg.nrrd) pairs.")
    fit.add_argument("--dataset", required=True, metavar="DIR_OR_CSV", help="the image/label pairs")
    fit.add_argument("--profile-out", required=True, metavar="P", help="the profile file to write")
    fit.add_argument("--report", help="also write a JSON report (inputs with SHA-256, training log)")
    add_settings_arguments(fit)
    add_run_arguments(fit)

    dataset = commands.add_parser("protect-dataset", help="protect every study of a dataset (resumable, on Dask)",
                                  description="Protect every image/label pair of a dataset (the layouts of "
                                  "fit-profile) into OUT under the same relative paths, labels copied unchanged (a "
                                  "DICOM SEG or RTSTRUCT rewritten to reference the derived series), on a local or an "
                                  "existing Dask cluster. OUT/manifest.jsonl records each study as it "
                                  "finishes. Exit code 3: some studies failed (the run went on without them).")
    dataset.add_argument("--dataset", required=True, metavar="DIR_OR_CSV", help="the image/label pairs")
    dataset.add_argument("--output-dir", required=True, metavar="OUT", help="folder for the protected dataset")
    dataset.add_argument("--profile", metavar="P", help="apply this protection profile [fit on each study]")
    dataset.add_argument("--difference", action="store_true", help="also write NAME_difference.EXT beside each output")
    dataset.add_argument("--dicomdir", action="store_true",
                         help="once every study is protected, also write OUT/dicomdir/: a DICOMDIR with copies of the "
                         "derived series and their SEG/RTSTRUCT under standard File IDs, for media or a PACS import")
    dataset.add_argument("--resume", action="store_true",
                         help="skip studies whose outputs still have the manifest's hashes; redo the rest")
    where = dataset.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N",
                       help="local Dask worker processes [one per GPU, else one per two cores]")
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://host:8786")
    add_mark_argument(dataset)
    add_settings_arguments(dataset)
    add_run_arguments(dataset)

    demo = commands.add_parser("demo", help="protect the embedded sample study",
                               description="Protect the embedded sample study (a slab of the MNI152 T1 template with "
                               "the lateral ventricles labelled) with the default settings, and write "
                               "sample_protected.nrrd, sample_difference.nrrd, sample_report.json and "
                               "sample_preview.png into the output folder, replacing the demo's own files from an "
                               "earlier run.")
    demo.add_argument("--output-dir", default="umed-demo-output", metavar="DIR",
                      help="folder for the four files (created if missing) [./umed-demo-output]")
    add_settings_arguments(demo)
    add_run_arguments(demo, overwrite=False)

    add_mark_parsers(commands)

    evaluate = commands.add_parser("evaluate", help="measure how well protection stops training (evaluation module)")
    if with_evaluation:
        evaluation = importlib.import_module("UMedProtectLib.evaluation.command")
        evaluation.add_arguments(evaluate)
        if not any("--debug" in action.option_strings for action in evaluate._actions):
            evaluate.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    for command in commands.choices.values():
        add_version(command)
    return parser


def add_mark_argument(parser: argparse.ArgumentParser) -> None:
    """--mark KEY, on the commands that protect."""
    parser.add_argument("--mark", metavar="KEY", help="also embed this key's mark (umed-protect keygen) in the ROI: "
                        "half the budget with a design, all of it with --design none")


def add_mark_parsers(commands) -> None:
    """keygen and audit prepare / verdict."""
    from ..marks import DEFAULT_MARK, MARKS
    from ..marks.probes import DEFAULT_CONTROLS, DEFAULT_FADE, DEFAULT_PROBE_GAIN
    from ..marks.verdict_report import ALPHA

    keygen = commands.add_parser("keygen", help="write a new secret key for marking and auditing",
                                 description="Write 256 random bits to a new file of mode 0600 (never over an "
                                 "existing one). Reports and manifests name the key by its SHA-256 fingerprint only.")
    keygen.add_argument("--out", required=True, metavar="KEY", help="the key file to create")
    audit = commands.add_parser("audit", help="test whether a model was trained on studies marked with your key",
                                description="prepare: blinded probe studies to have a suspect model segment; "
                                "verdict: the exact rank test on the label maps it returned (docs/audit.md).")
    steps = audit.add_subparsers(dest="audit_command", metavar="STEP", parser_class=Parser, required=True)
    prepare = steps.add_parser("prepare", help="write blinded probe studies from held-out studies",
                               description="Stamp the key's mark and control marks of the same kind on held-out "
                               "studies (the layouts of fit-profile) whose ROI is faded, under shuffled names.")
    prepare.add_argument("--key", required=True, help="the owner's key file")
    prepare.add_argument("--studies", required=True, metavar="DIR_OR_CSV", help="held-out image/label pairs, never "
                         "shared")
    prepare.add_argument("--out", required=True, metavar="PROBES", help="the folder to create")
    prepare.add_argument("--mark-kind", dest="mark", choices=list(MARKS), default=DEFAULT_MARK,
                         help=f"the kind of mark the studies were marked with [{DEFAULT_MARK}]")
    prepare.add_argument("--controls", type=int, default=DEFAULT_CONTROLS,
                         help=f"control marks per study; the smallest p-value is 1/(controls+1) [{DEFAULT_CONTROLS}]")
    prepare.add_argument("--fade", type=float, default=DEFAULT_FADE,
                         help=f"share of the ROI's contrast a probe keeps [{DEFAULT_FADE}]")
    prepare.add_argument("--probe-gain", type=float, default=DEFAULT_PROBE_GAIN,
                         help=f"the probes' mark as a multiple of the study's budget [{DEFAULT_PROBE_GAIN:g}]")
    add_settings_arguments(prepare, only=("epsilon", "window", "modality"))
    add_run_arguments(prepare, overwrite=False)
    verdict = steps.add_parser("verdict", help="test the suspect's label maps of the probes",
                               description="Read the label maps the suspect model returned for the probes (named "
                               "as the probes, any image format; nnU-Net's _0000 suffix allowed), test the key's "
                               "rank among its controls and print the p-value and a verdict.")
    verdict.add_argument("--key", required=True, help="the owner's key file")
    verdict.add_argument("--probes", required=True, metavar="PROBES", help="the folder 'audit prepare' wrote")
    answers = verdict.add_mutually_exclusive_group(required=True)
    answers.add_argument("--predictions", metavar="PREDS", help="the suspect's label maps")
    answers.add_argument("--nnunet-model", metavar="RESULTS_FOLDER",
                         help="run a suspect nnU-Net v2 model here instead: its trained-model folder (dataset.json, "
                         "plans.json, fold_*/checkpoint_final.pth), weights loaded as data only")
    verdict.add_argument("--folds", help="with --nnunet-model: comma-separated folds, e.g. 0,1 or all [every fold "
                         "with a final checkpoint]")
    verdict.add_argument("--alpha", type=float, default=ALPHA, help=f"significance level [{ALPHA}]")
    verdict.add_argument("--report", help="also write the verdict as JSON")
    verdict.add_argument("--plot", metavar="PNG", help="also write the key's statistic against the controls' (PNG)")
    add_run_arguments(verdict)


def _run(args: argparse.Namespace) -> int:
    """Dispatch a parsed command."""
    if args.command == "evaluate":
        return int(importlib.import_module("UMedProtectLib.evaluation.command").run(args))
    from . import commands

    handlers = {"protect": commands.protect_command, "fit-profile": commands.fit_profile_command,
                "demo": commands.demo_command}
    if args.command in ("keygen", "audit"):
        from . import audit_commands

        name = "keygen" if args.command == "keygen" else f"audit_{args.audit_command}"
        return getattr(audit_commands, f"{name}_command")(args)
    if args.command == "protect-dataset":
        return importlib.import_module("UMedProtectLib.dataset.protect_dataset").protect_dataset_command(args)
    return handlers[args.command](args)


def _raise_cancelled(signum, frame) -> None:
    """SIGTERM (e.g. the Slicer panel's Cancel) unwinds like Ctrl+C, so that partial outputs are removed."""
    # A KeyboardInterrupt, not Cancelled (an Exception): a library's `except Exception` around a lazy import swallowed
    # the latter, and the half-imported module then failed as an internal error instead of a cancel.
    raise KeyboardInterrupt("terminated")


def _error(message: str) -> None:
    """One line on stderr."""
    print(f"{PROG}: error: {message}", file=sys.stderr)


def attach_signed_values(argv: Sequence[str]) -> List[str]:
    """`--window -600,1500` as `--window=-600,1500`: argparse would take a value starting with '-' for an option."""
    joined: List[str] = []
    for token in argv:
        signed = len(token) > 1 and token[0] == "-" and token[1] in "0123456789."
        if signed and joined and joined[-1] in SIGNED_VALUE_OPTIONS:
            joined[-1] = f"{joined[-1]}={token}"
        else:
            joined.append(token)
    return joined


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    argv = attach_signed_values(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    positional = [a for a in argv if not a.startswith("-")]
    try:
        if positional[:1] == ["evaluate"]:
            try:
                parser = build_parser(with_evaluation=True)
            except ImportError as error:
                _error(f"the evaluation module is not installed ({error}); reinstall UMedProtectLib with its "
                       "evaluation package")
                return 2
        else:
            parser = build_parser()
        args = parser.parse_args(argv)
    except UsageError as error:
        _error(str(error))
        return 2
    except SystemExit as exit_:  # --help and --version exit through argparse
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_cancelled)
    from ..files.transaction import committed_outputs

    already = len(committed_outputs())
    stdout = sys.stdout = GuardedOutput(sys.stdout)
    try:
        code = _run(args)
        stdout.flush()
        return code
    except SummaryNotPrinted as error:
        stdout.discard()
        print(f"{PROG}: warning: the outputs were written, but not their summary: cannot write to the standard output "
              f"({error.reason})", file=sys.stderr)
        return error.code
    except InputError as error:
        if isinstance(error, StandardOutputError):
            stdout.discard()
        _error(str(error).splitlines()[0] if str(error) else "bad input")
        return 2
    except (Cancelled, KeyboardInterrupt) as error:
        written = committed_outputs()[already:]
        if written:  # the signal came after the commit: the outputs are complete and stay
            print(f"{PROG}: warning: cancelled after the outputs were written; the {len(written)} files are complete "
                  f"(e.g. {str(written[0])!r})", file=sys.stderr)
            return 0
        _error(f"cancelled; {getattr(error, 'outcome', Cancelled().outcome)}")
        return 130
    except Exception as error:  # noqa: BLE001 - the last line of defence of a command-line tool
        if debug:
            traceback.print_exc()
        summary = str(error).strip().splitlines()[0] if str(error).strip() else ""
        _error(f"internal error: {type(error).__name__}: {summary} (rerun with --debug for the traceback)")
        return 1
    finally:
        sys.stdout = stdout.stream
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)

