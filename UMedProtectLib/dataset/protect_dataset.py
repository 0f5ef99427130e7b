"""`umed-protect protect-dataset`: protect every study of a dataset on Dask, with a manifest, resume and a summary.

Exit codes: 0 every study is protected; 3 the run finished but some studies failed (the manifest and the
summary say which and why); 2 bad input or usage; 130 cancelled; 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import List, Mapping, Optional, Sequence, Tuple

from ..console import message_stream, print_summary, reporter
from ..errors import Cancelled, InputError
from ..files.dicom import is_series_input
from ..files.reports import plain
from ..files.transaction import (STAGING_PREFIX, check_writable, confined, created_folders, folder_locks,
                                 held_signals, recover_stale, resolved)
from ..progress import ProgressCallback, emit
from ..settings import ProtectSettings, settings_from
from .layouts import dataset_root, find_pairs
from .manifest import Manifest, still_valid
from .study_job import StudyJob, input_hashes, plan_jobs

SOME_FAILED = 3
# Where --dicomdir puts the DICOM File-set (DICOMDIR and copies of the instances under standard File IDs) in OUT.
DICOMDIR_FOLDER = "dicomdir"


def duration(seconds: float) -> str:
    """A time left in words that cannot be read as a clock time: "42 s", "3 min 20 s", "1 h 05 min"."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    if hours:
        return f"{hours} h {rest // 60:02d} min"
    return f"{rest // 60} min {rest % 60:02d} s" if rest >= 60 else f"{rest} s"


class StudyProgress:
    """Progress over studies with an ETA from this run's own pace, reported from the start of the run."""

    def __init__(self, callback: Optional[ProgressCallback], total: int, already: int):
        self.callback, self.total, self.already = callback, total, already
        self.finished = self.failed = 0
        self.start = time.monotonic()

    def starting(self, where: str) -> None:
        """Say that the workers are starting: their start-up (importing torch) takes a while before any study."""
        emit(self.callback, "workers", self.already / max(self.total, 1), f"starting {where}")

    def started(self) -> None:
        """Start the clock of the pace (once the workers are up, so that their start-up does not skew the ETA)."""
        self.start = time.monotonic()
        emit(self.callback, "studies", self.already / max(self.total, 1),
             f"{self.already}/{self.total} studies, the workers are up and protecting; ETA after the first study")

    def study_done(self, record: dict) -> None:
        """Count a finished study and report the fraction of the dataset and the time left."""
        self.finished += 1
        self.failed += record.get("status") != "done"
        remaining = self.total - self.already - self.finished
        eta = (time.monotonic() - self.start) / self.finished * remaining
        emit(self.callback, "studies", (self.already + self.finished) / max(self.total, 1),
             f"{self.already + self.finished}/{self.total} studies, {self.failed} failed, ETA {duration(eta)} left; "
             f"{record['study']} {record.get('status')}")


def _check_output_dir(output_dir: Path, root: Path, jobs: Sequence[StudyJob], manifest: Manifest,
                      inputs: Mapping[Path, Path], args: argparse.Namespace) -> None:
    """Refuse an output folder that is the dataset's, whose files would be inputs or lie outside it (links), or that
    holds earlier results without --resume/--overwrite."""
    if resolved(output_dir) == resolved(root):
        raise InputError(f"--output-dir {str(output_dir)!r} is the dataset's folder; the outputs keep the inputs' "
                         "relative paths and would replace them, so choose another folder")
    for job in jobs:
        for target in [*job.outputs().values(), *job.copies().values()]:
            confined(target, inputs, output_dir, f"output of study {job.study!r}")
            if not (args.resume or args.overwrite) and os.path.lexists(target):
                raise InputError(f"output {str(target)!r} already exists; pass --resume to continue an earlier run "
                                 "or --overwrite to replace its outputs")
    if manifest.exists() and not (args.resume or args.overwrite):
        raise InputError(f"{str(manifest.path)!r} holds an earlier run; pass --resume to continue it or --overwrite "
                         "to start again")


def _recover_partial_outputs(output_dir: Path) -> None:
    """Roll back and remove the staging folders that killed runs left anywhere in OUT; a live run's are left alone."""
    for folder, subfolders, _ in os.walk(output_dir):
        if any(name.startswith(STAGING_PREFIX) for name in subfolders):
            with held_signals(), folder_locks([Path(folder)]):
                recover_stale(Path(folder))
        subfolders[:] = [name for name in subfolders if not name.startswith(STAGING_PREFIX)]


def _run_key(args: argparse.Namespace, settings_dict: dict, profile_sha256: Optional[str],
             mark_fingerprint: Optional[str]) -> dict:
    """What a resumed run must share with the earlier one for a study's outputs to count as done."""
    settings = {key: value for key, value in settings_dict.items() if key not in ("seed", "device")}
    key = {"settings": settings, "run_seed": settings_dict["seed"], "profile_sha256": profile_sha256,
           "difference": bool(args.difference), "mark": mark_fingerprint}
    return json.loads(json.dumps(plain(key)))  # the form it has when read back from the manifest


def _mean(values: List[float]) -> str:
    """A table cell: the mean to 4 significant digits, or - for none."""
    return f"{sum(values) / len(values):.4g}" if values else "-"


def _summary(records: List[dict], skipped: int, seconds: float, workers: str, manifest: Manifest,
             evidence: str) -> List[str]:
    """The closing lines: counts, a table per status with quality figures, every failure with its error, every
    study's warnings, and the design's threat model in one sentence."""
    done = [r for r in records if r.get("status") == "done"]
    failed = [r for r in records if r.get("status") != "done"]
    lines = [f"protect-dataset: {len(records) + skipped} studies: {len(done)} protected now, {skipped} already done "
             f"(skipped), {len(failed)} failed; {seconds:.1f} s on {workers}", "",
             "| status | studies | PSNR dB mean | PSNR dB min | SSIM mean | s per study |", "|---|---|---|---|---|---|"]
    psnr = [r["metrics"]["psnr_db"] for r in done if r["metrics"].get("psnr_db") is not None]
    ssim = [r["metrics"]["ssim"] for r in done if r["metrics"].get("ssim") is not None]
    lowest = f"{min(psnr):.4g}" if psnr else "-"
    lines.append(f"| protected | {len(done)} | {_mean(psnr)} | {lowest} | {_mean(ssim)} | "
                 f"{_mean([r['seconds'] for r in done])} |")
    lines.append(f"| skipped | {skipped} | - | - | - | - |")
    lines.append(f"| failed | {len(failed)} | - | - | - | {_mean([r['seconds'] for r in failed])} |")
    lines += [f"  failed: {r['study']}: {r.get('error')}" for r in sorted(failed, key=lambda r: r["study"])]
    warned = Counter(warning for r in done for warning in dict.fromkeys(r.get("warnings") or []))
    lines += [f"  warning ({count} of {len(done)} studies): {warning}" for warning, count in warned.items()]
    lines.append(f"  evidence: {evidence}")
    lines.append(f"  manifest: {manifest.path}")
    return lines


def _cancelled_outcome(manifest: Manifest, run_key: dict, jobs: Sequence[StudyJob], output_dir: Path) -> str:
    """What a cancelled dataset run leaves: the studies done before the cancel stay, as its manifest records them
    (read back from the file: the cancel may come between a record's line and anything else), and the studies whose
    outputs are in OUT without a record (a worker's commit just before the cancel, or an earlier run's)."""
    done = {study for study, r in manifest.latest().items() if r.get("status") == "done" and r.get("run") == run_key}
    unrecorded = sum(job.study not in done and any(os.path.lexists(p) for p in job.outputs().values()) for job in jobs)
    if not done and not unrecorded:
        return "no study was finished, no output file was written"
    said = (f"studies finished before the cancel: {len(done)} of {len(jobs)}, kept in {str(output_dir)!r} and its "
            "manifest" if done else "no study was finished and recorded")
    if unrecorded:  # said "no output file was written" with a study and its label in OUT
        said += (f"; {unrecorded} more have outputs in {str(output_dir)!r} that the manifest does not record (written "
                 "just before the cancel, or by an earlier run)")
    return said + "; rerun with --resume to protect the rest"


def _protect_on_dask(jobs: Sequence[StudyJob], settings: ProtectSettings, workers: int, scheduler: Optional[str],
                     profile_path: Optional[str], run_key: dict, manifest: Manifest, progress: StudyProgress,
                     fresh: bool, records: List[dict]) -> None:
    """Submit every job to Dask and append each study's record to the manifest (and `records`) as it finishes.

    The manifest is started (emptied for a fresh run) only once the cluster is up: a run that cannot reach its
    scheduler leaves the folder as it was.
    """
    from distributed import as_completed

    from .cluster import dask_client, protect_on_worker

    with dask_client(workers, scheduler, profile_path, settings.device) as client:
        manifest.start(fresh)
        progress.started()
        futures = {client.submit(protect_on_worker, job, settings, pure=False): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                record = future.result()
            except Cancelled:
                raise
            except Exception as error:  # noqa: BLE001 - e.g. the OS killed a worker while it held this study
                message = str(error).strip().splitlines()[0] if str(error).strip() else ""
                record = {"study": job.study, "seed": job.seed, "status": "failed", "seconds": 0.0,
                          "error": f"{type(error).__name__}: {message}"}
            record["run"] = run_key
            manifest.append(record)
            records.append(record)
            progress.study_done(record)


def protect_dataset_command(args: argparse.Namespace) -> int:
    """Protect every study of --dataset into --output-dir, on a local or existing Dask cluster."""
    from .cluster import check_workers

    if args.workers is not None:
        check_workers(args.workers)  # before anything is created
    pairs = find_pairs(args.dataset)
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(f"--output-dir {str(output_dir)!r} is a file; give a folder")
    # Removed again while still empty by any refusal or cancel: many exit-2 runs left an empty OUT behind.
    with created_folders([output_dir]):
        return _protect_dataset(args, pairs, resolved(output_dir))


def _protect_dataset(args: argparse.Namespace, pairs: Sequence[Tuple[Path, Path]], output_dir: Path) -> int:
    """protect_dataset_command once OUT exists."""
    from ..files.reports import sha256_file
    from ..marks.key import read_key
    from ..method.profile import load_profile
    from .cluster import default_workers

    root = dataset_root(args.dataset)
    profile_path = str(resolved(args.profile)) if args.profile else None
    profile = load_profile(profile_path) if profile_path else None  # refuse a bad profile before any work
    settings = settings_from(args, profile.settings if profile is not None else None)
    mark_path = resolved(args.mark) if args.mark else None
    mark_fingerprint = read_key(mark_path).fingerprint if mark_path else None  # a bad key is refused before any work
    jobs = plan_jobs(pairs, root, output_dir, settings.seed, args.difference, mark_path)
    if args.dicomdir and not any(is_series_input(job.image) for job in jobs):
        raise InputError("--dicomdir indexes DICOM series, and the dataset holds none; leave it out")
    sources = [path for job in jobs for path in job.inputs()] + [Path(args.dataset)] + (
        [Path(profile_path)] if profile_path else []) + ([mark_path] if mark_path else [])
    inputs = {resolved(path): path for path in sources}
    manifest = Manifest(output_dir, inputs)
    _check_output_dir(output_dir, root, jobs, manifest, inputs, args)
    check_writable([manifest.path])

    run_key = _run_key(args, settings.to_dict(), sha256_file(Path(profile_path)) if profile_path else None,
                       mark_fingerprint)
    _recover_partial_outputs(output_dir)
    latest = manifest.latest() if args.resume else {}
    todo = [job for job in jobs if not (latest.get(job.study, {}).get("run") == run_key
                                        and still_valid(latest[job.study], output_dir, input_hashes(job)))]
    skipped = len(jobs) - len(todo)
    stream = message_stream(args)
    workers = args.workers or default_workers(len(todo))
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else f"{workers} local Dask worker(s)"
    print(f"protect-dataset: {len(jobs)} studies in {args.dataset}, {skipped} already done, {len(todo)} to protect "
          f"on {where}", file=stream)
    progress = StudyProgress(reporter(args.progress), len(jobs), skipped)
    if todo:
        progress.starting(where)
    start = time.monotonic()
    records: List[dict] = []
    try:
        if todo:
            _protect_on_dask(todo, settings, workers, args.scheduler, profile_path, run_key, manifest, progress,
                             fresh=not args.resume, records=records)
    except (Cancelled, KeyboardInterrupt):
        raise Cancelled("terminated", outcome=_cancelled_outcome(manifest, run_key, jobs, output_dir)) from None
    emit(progress.callback, "done", 1.0, f"{len(jobs)} studies")
    applied = profile.applied_to(settings)[0] if profile is not None else settings  # the design a profile imposes
    evidence = applied.design_spec.threat_model()["summary"]
    code = SOME_FAILED if any(r.get("status") != "done" for r in records) else 0
    lines = _summary(records, skipped, time.monotonic() - start, where, manifest, evidence)
    if args.dicomdir and code == 0:  # a set with a study missing would pass for the whole dataset
        from ..files.dicom.dicomdir import write_file_set

        files = [path for job in jobs for path in job.dicom_outputs()]
        lines.append(f"  wrote {write_file_set(files, output_dir / DICOMDIR_FOLDER)} (a DICOM File-set of "
                     f"{len(files)} instances)")
    print_summary(lines, stream, code)
    return code
