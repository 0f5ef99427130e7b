"""What the `keygen` and `audit prepare` / `audit verdict` subcommands do, given their parsed arguments."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..files.reports import report_json
from ..files.transaction import OutputTransaction
from ..console import message_stream, reporter
from ..settings import settings_from


def keygen_command(args: argparse.Namespace) -> int:
    """`umed-protect keygen`: write a new secret key (mode 0600, never over an existing file)."""
    from ..marks.key import generate_key, write_key

    key = generate_key()
    write_key(key, Path(args.out))
    print(f"wrote the secret key {args.out} (keep it: it proves the marks are yours; never share it)\n"
          f"  fingerprint {key.fingerprint}", file=message_stream(args))
    return 0


def audit_prepare_command(args: argparse.Namespace) -> int:
    """`umed-protect audit prepare`: blinded probe studies from the owner's held-out studies."""
    from ..dataset.layouts import find_pairs
    from ..marks.audit import prepare
    from ..marks.key import read_key

    key = read_key(Path(args.key))
    pairs = find_pairs(args.studies)
    out = Path(args.out)
    plan = prepare(key, pairs, out, settings_from(args), args.mark, args.controls, args.fade, args.probe_gain,
                   reporter(args.progress))
    print(f"wrote {(plan.controls + 1) * len(plan.studies)} probe studies to {out / 'probes'} "
          f"({len(plan.studies)} held-out studies x {plan.controls + 1} marks, key {plan.fingerprint[:16]}...)\n"
          f"  send only {out / 'probes'} to the suspect model; keep {out / 'audit.json'} and {out / 'rois'}",
          file=message_stream(args))
    return 0


def audit_verdict_command(args: argparse.Namespace) -> int:
    """`umed-protect audit verdict`: the test on the suspect's label maps, a paragraph, a JSON report and a plot."""
    from ..marks.audit import verdict
    from ..marks.key import read_key
    from ..marks.verdict_report import verdict_png, verdict_report

    key = read_key(Path(args.key))
    report_path, plot_path = Path(args.report) if args.report else None, Path(args.plot) if args.plot else None
    transaction = OutputTransaction(overwrite=args.overwrite)
    transaction.check({"report": report_path, "preview": plot_path})
    if args.nnunet_model:
        plan, test, responses = _verdict_of_nnunet(key, args)
    else:
        plan, test, responses = verdict(key, Path(args.probes), Path(args.predictions), reporter(args.progress))
    report = verdict_report(test, plan.fingerprint, plan.mark, args.alpha)
    with transaction:
        if report_path is not None:
            transaction.stage(report_path).write_bytes(report_json(report))
        if plot_path is not None:
            from ..marks.probes import mark_seeds

            transaction.stage(plot_path).write_bytes(verdict_png(responses, mark_seeds(key, plan.nonce,
                                                                                          plan.controls)[1]))
        written = transaction.commit()
    stream = message_stream(args)
    print(f"p = {test.p_value:.4g} (key ranked {test.rank} of {test.marks}; effect size {test.effect_size:+.2f})",
          file=stream)
    print(report["verdict"], file=stream)
    for path in written:
        print(f"  wrote {path}", file=stream)
    return 0


def _verdict_of_nnunet(key, args: argparse.Namespace):
    """The verdict on a suspect nnU-Net model run here over the probes (its label maps in a temporary folder)."""
    import tempfile

    from ..marks.audit import PROBE_EXTENSION, load_plan, verdict
    from ..marks.suspect_nnunet import predict_probes
    from ..method.devices.device import resolve_device

    probes = Path(args.probes)
    load_plan(key, probes)  # another key's or a changed audit is refused before the model runs
    folds = [fold.strip() for fold in args.folds.split(",")] if args.folds else None
    with tempfile.TemporaryDirectory(prefix="umed-audit-answers-") as answers:
        predict_probes(Path(args.nnunet_model), sorted((probes / "probes").glob(f"*{PROBE_EXTENSION}")),
                       Path(answers), folds, str(resolve_device("auto")))
        return verdict(key, probes, Path(answers), reporter(args.progress))
