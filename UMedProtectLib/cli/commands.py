"""What the `protect`, `fit-profile` and `demo` subcommands do, given their parsed arguments."""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Sequence, Tuple

from ..errors import InputError, StandardOutputError, SummaryNotPrinted
from ..files.dicom.study import check_series_output, companion_files, read_study, series_output
from ..files.image_io import stage_image
from ..files.reports import command_report, file_record, report_json, summary_lines
from ..files.roles import check_paths
from ..files.transaction import OutputTransaction, created_folders
from ..progress import BarReporter, JsonLinesReporter, ProgressCallback, emit
from ..settings import ProtectSettings

if TYPE_CHECKING:
    from ..method.profile import Profile

PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_FILES = {"output": "sample_protected.nrrd", "difference": "sample_difference.nrrd",
              "report": "sample_report.json", "preview": "sample_preview.png"}


@dataclass(frozen=True)
class ProtectOutputs:
    """The files one protection writes, each named as its command-line option: the protected image and extras."""

    output: Path
    difference: Optional[Path] = None
    report: Optional[Path] = None
    preview: Optional[Path] = None
    profile_out: Optional[Path] = None  # the generators fitted on this study, saved as a profile

    def by_option(self) -> Dict[str, Optional[Path]]:
        """Option name -> path (None: not written)."""
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass(frozen=True)
class ProtectJob:
    """One protection from files, fully described; the commands build it from their arguments."""

    image: Path
    label: Path
    outputs: ProtectOutputs
    settings: ProtectSettings  # resolved: the options given over a profile's settings or the defaults
    profile: Optional[Path] = None  # a profile file to apply instead of fitting (its SHA-256 goes into the report)
    progress: str = "none"  # bar on stderr, json lines on stdout, or none
    overwrite: bool = False
    command: str = "protect"  # the command the report names
    study: Optional[str] = None  # a description of the study (the demo's)
    copies: Mapping[Path, Path] = field(default_factory=dict)  # inputs copied unchanged with the outputs
    series_uid: Optional[str] = None  # the DICOM series to protect when the image folder holds several
    segments: Optional[Tuple[str, ...]] = None  # the SEG segments or RTSTRUCT ROIs to protect, by name or number
    folder: Optional[Path] = None  # every output must lie inside it (a dataset run's output folder)
    mark: Optional[Path] = None  # the owner's key file whose mark is embedded as well


def reporter(kind: str) -> Optional[ProgressCallback]:
    """The progress listener for --progress: a bar on stderr, JSON lines on stdout, or nothing."""
    if kind == "json":
        return JsonLinesReporter(sys.stdout)
    if kind == "bar":
        return BarReporter(sys.stderr)
    return None


def message_stream(args: argparse.Namespace):
    """Where human-readable lines go: stderr when stdout carries JSON progress lines."""
    return sys.stderr if getattr(args, "progress", "bar") == "json" else sys.stdout


def settings_from(args: argparse.Namespace, base: Optional[ProtectSettings] = None) -> ProtectSettings:
    """ProtectSettings from the options given; unset options keep `base`'s values (a profile's) or the defaults."""
    # A profile's device and labels belong to the machine and study it was fitted on, not to this run.
    settings = base.with_changes(device="auto", labels=None, seed=0) if base is not None else ProtectSettings()
    return settings.with_options(vars(args))


def input_files(*paths: Optional[Path]) -> List[Path]:
    """The given input files (not folders) and the files they stand for: data files, a DICOM series' files."""
    files: List[Path] = []
    for path in paths:
        if path is not None:
            files += ([] if path.is_dir() else [path]) + companion_files(path)
    return files


def print_summary(lines: Sequence[str], stream, code: int = 0) -> None:
    """Print the summary of a run whose outputs are already on disk. A standard output that fails now cannot undo
    them: the run ends as SummaryNotPrinted with its own exit `code`, not as one that wrote nothing."""
    try:
        print("\n".join(lines), file=stream)
        stream.flush()  # a block-buffered stdout would only fail later, at the exit's flush
    except StandardOutputError as error:
        raise SummaryNotPrinted(error.reason, code) from None


def _engine_warnings(caught: List[warnings.WarningMessage]) -> List[str]:
    """Messages of the warnings that the engine itself raised (e.g. a fall back from GPU to CPU).

    PyTorch's own C++ warnings are attributed to the engine line that triggered them; they are
    developer diagnostics, not facts about the run, and stay out of the report.
    """
    return [str(w.message).splitlines()[0] for w in caught
            if str(Path(w.filename).resolve()).startswith(str(PACKAGE_DIR))
            and "Triggered internally" not in str(w.message)]


def run_protect(job: ProtectJob, profile: Optional["Profile"] = None) -> Tuple[dict, List[Path]]:
    """Protect one study from files and write the outputs all together; returns the report and the files written.

    `profile` is job.profile already loaded (a dataset run loads it once per worker); otherwise it is loaded here.
    """
    from ..files.dicom.writer import derivation_description, series_targets, stage_series
    from ..files.preview import further_windows, preview_png
    from ..marks.embed import Marking
    from ..marks.key import read_key
    from ..method.profile import load_profile, save_profile
    from ..method.protection import protect

    outputs = job.outputs
    # Before the outputs: swapped inputs make a right output look wrong (a series folder for an image file).
    check_paths(job.image, job.label)
    inputs = input_files(job.image, job.label, job.profile, job.mark)
    transaction = OutputTransaction(overwrite=job.overwrite, keep_intact=inputs, folder=job.folder)
    to_series = series_output(job.image, outputs.output)
    transaction.check({k: v for k, v in outputs.by_option().items() if not (to_series and k == "output")})
    if to_series:
        check_series_output(outputs.output, job.image, job.overwrite, transaction.keep_intact)
    if profile is None and job.profile is not None:
        profile = load_profile(job.profile)
    marking = Marking(read_key(job.mark)) if job.mark is not None else None
    image, label, series = read_study(job.image, job.label, job.series_uid, job.segments)
    records = {"image": file_record(job.image, companion_files(job.image)),
               "label": file_record(job.label, companion_files(job.label))}
    if job.profile is not None:
        records["profile"] = file_record(job.profile)
    progress = reporter(job.progress)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = protect(image.array, label.array, image.spacing_xyz, job.settings, progress, profile=profile,
                         header=image.modality, mark=marking,
                         stored_step=series.slope if to_series else None)
    report = command_report(
        job.command, result.report, records, outputs.by_option(),
        [*label.warnings, *(result.report.get("warnings") or []), *_engine_warnings(caught)], study=job.study,
        sha256={role: record["sha256"] for role, record in records.items()},
        image={"shape": list(image.array.shape), "dtype": str(image.array.dtype), "spacing": list(image.spacing),
               "origin": list(image.origin), "direction": list(image.direction)},
        label_names={str(k): v for k, v in label.names.items()},
        **({"dicom": {"series_uid": series.series_uid, "frame_of_reference": series.frame_of_reference,
                      "rescale": [series.slope, series.intercept], "slices": len(series.files)}} if series else {}))
    emit(progress, "write", 1.0, "writing the outputs")
    folders = [target.parent for target in series_targets(series, outputs.output)] if to_series else []
    with created_folders(folders), transaction:
        if to_series:
            report["dicom"]["derived_series_uid"] = stage_series(transaction, result.protected, series,
                                                                 outputs.output, derivation_description(report))
        else:
            stage_image(transaction, result.protected, image, outputs.output)
        if outputs.difference is not None:
            stage_image(transaction, result.difference, image, outputs.difference)
        if outputs.preview is not None:
            window = report["visibility"]["window"]
            unit = "HU" if report["reading"]["ct_in_hu"] else "units"
            transaction.stage(outputs.preview).write_bytes(preview_png(
                image.array, result.protected, label.array > 0, report["epsilon_native"],
                (window["low"], window["high"]), image.spacing, image.direction, window["name"],
                further_windows(report), report.get("texture"), unit))
        for source, target in job.copies.items():
            shutil.copyfile(source, transaction.stage(target))
        if outputs.profile_out is not None:
            if result.profile is None:
                raise InputError("--profile-out: design 'none' fits nothing to save; choose a design")
            save_profile(result.profile, transaction.stage(outputs.profile_out))
        if outputs.report is not None:
            transaction.stage(outputs.report).write_bytes(report_json(report))
        written = transaction.commit()
    return report, written


def _path(text: Optional[str]) -> Optional[Path]:
    """An optional command-line path."""
    return Path(text) if text else None


def protect_command(args: argparse.Namespace) -> int:
    """`umed-protect protect`: protect one study given as image and label files."""
    from ..method.profile import load_profile

    profile = load_profile(args.profile) if args.profile else None
    job = ProtectJob(
        image=Path(args.image), label=Path(args.label),
        outputs=ProtectOutputs(Path(args.output), _path(args.difference), _path(args.report), _path(args.preview),
                               _path(args.profile_out)),
        settings=settings_from(args, profile.settings if profile is not None else None), profile=_path(args.profile),
        progress=args.progress, overwrite=args.overwrite, series_uid=args.series_uid,
        segments=tuple(s for s in args.segments.split(",") if s.strip()) if args.segments else None,
        mark=_path(args.mark))
    report, written = run_protect(job, profile)
    print_summary(summary_lines(report, written), message_stream(args))
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """`umed-protect demo`: protect the embedded sample study and write the four demo files."""
    from ..files.sample import SAMPLE_SLICES, sample_paths

    image_path, label_path = sample_paths()
    folder = Path(args.output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {str(folder)!r}: {error.strerror}") from None
    description = (f"embedded sample: MNI152 T1 template slices {SAMPLE_SLICES[0]}-{SAMPLE_SLICES[1] - 1}, "
                   "label 1 = lateral ventricles")
    stream = message_stream(args)
    print(f"umed-protect demo: {description}", file=stream)
    job = ProtectJob(image=image_path, label=label_path,
                     outputs=ProtectOutputs(**{role: folder / name for role, name in DEMO_FILES.items()}),
                     settings=settings_from(args), progress=args.progress, overwrite=True, command="demo",
                     study=description)
    report, written = run_protect(job)
    print_summary(summary_lines(report, written), stream)
    return 0


def fit_profile_command(args: argparse.Namespace) -> int:
    """`umed-protect fit-profile`: fit one protection profile on a dataset of image/label pairs."""
    from ..dataset.layouts import find_pairs
    from ..method.devices.data_parallel import is_writer, join_torchrun
    from ..method.profile import save_profile
    from ..method.protection import fit_profile

    profile_out = Path(args.profile_out)
    report_path = Path(args.report) if args.report else None
    pairs = find_pairs(args.dataset)
    inputs = input_files(*[path for pair in pairs for path in pair])
    transaction = OutputTransaction(overwrite=args.overwrite, keep_intact=inputs)
    transaction.check({"profile_out": profile_out, "report": report_path})
    settings = join_torchrun(settings_from(args))  # under torchrun: one rank of a DistributedDataParallel fit
    stream = message_stream(args)
    progress = reporter(args.progress) if is_writer() else None
    studies, headers, notes = [], [], []
    for index, (image_path, label_path) in enumerate(pairs):
        emit(progress, "read", 0.0, f"reading study {index + 1}/{len(pairs)}: {image_path.name}")
        image, label, _ = read_study(image_path, label_path)
        notes += [f"{image_path.name}: {warning}" for warning in label.warnings]
        studies.append((image.array, label.array))
        headers.append(image.modality)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profile = fit_profile(studies, settings, progress, headers=headers)
    notes += _engine_warnings(caught)
    if not is_writer():
        return 0
    with transaction:
        save_profile(profile, transaction.stage(profile_out))
        if report_path is not None:
            report = command_report(
                "fit-profile", {"settings": settings.to_dict(), "profile": dict(profile.info)},
                [{"image": file_record(image_path, companion_files(image_path)),
                  "label": file_record(label_path, companion_files(label_path))} for image_path, label_path in pairs],
                {"profile": profile_out, "report": report_path}, notes)
            transaction.stage(report_path).write_bytes(report_json(report))
        written = transaction.commit()
    print_summary([f"  warning: {note}" for note in notes]
                  + [f"fitted a profile on {len(pairs)} studies ({profile.info.get('slices', '?')} slices) in "
                     f"{profile.info.get('runtime_s', 0.0):.1f} s on {profile.info.get('device', '?')}"]
                  + [f"  wrote {path}" for path in written], stream)
    return 0
