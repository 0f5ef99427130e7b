"""What the `protect`, `fit-profile` and `demo` subcommands do, given their parsed arguments."""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from .errors import InputError
from .image_io import data_files, image_extension, read_image, stage_image
from .label_io import is_segmentation_file, read_label
from .outputs import OutputTransaction, check_writable, resolved
from .progress import BarReporter, JsonLinesReporter, ProgressCallback, emit
from .reports import file_record, report_json, summary_lines
from .settings import ProtectSettings

if TYPE_CHECKING:
    from .profile import Profile

PACKAGE_DIR = Path(__file__).resolve().parent
DEMO_FILES = {"output": "sample_protected.nrrd", "difference": "sample_difference.nrrd",
              "report": "sample_report.json", "preview": "sample_preview.png"}


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
    """The given input files and the separate data files their headers name."""
    files: List[Path] = []
    for path in paths:
        if path is not None:
            files.append(path)
            if not is_segmentation_file(path) and path.is_file():
                try:
                    files += data_files(path)
                except InputError:
                    pass  # an unsupported extension is reported when the file is read
    return files


def check_outputs(outputs: Dict[str, Optional[Path]], inputs: Sequence[Path], overwrite: bool) -> None:
    """Refuse outputs that are inputs, that coincide with each other, or that exist without --overwrite."""
    taken = {resolved(p): p for p in inputs}
    seen: Dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        target = resolved(path)
        flag = "--" + option.replace("_", "-")
        if target in taken:
            raise InputError(f"{flag} {str(path)!r} is the input file {str(taken[target])!r}; choose another name "
                             "(inputs are never modified)")
        if target in seen:
            raise InputError(f"{flag} and {seen[target]} are the same file {str(path)!r}; give each its own name")
        seen[target] = flag
        if target.is_dir():
            raise InputError(f"{flag} {str(path)!r} is a folder; give a file name")
        if not target.parent.is_dir():
            raise InputError(f"the folder of {flag} {str(path)!r} does not exist; create it first")
        if target.exists() and not overwrite:
            raise InputError(f"{flag} {str(path)!r} already exists; remove it or pass --overwrite")
    check_writable(outputs.values())  # now, not after a fit of many minutes


def _check_output_types(output: Path, difference: Optional[Path], preview: Optional[Path]) -> None:
    """Check output file types before any work is done."""
    image_extension(output)
    if difference is not None:
        image_extension(difference)
    if preview is not None and not preview.name.lower().endswith(".png"):
        raise InputError(f"--preview {str(preview)!r} must be a .png file")


def _engine_warnings(caught: List[warnings.WarningMessage]) -> List[str]:
    """Messages of the warnings that the engine itself raised (e.g. a fall back from GPU to CPU).

    PyTorch's own C++ warnings are attributed to the engine line that triggered them; they are
    developer diagnostics, not facts about the run, and stay out of the report.
    """
    return [str(w.message).splitlines()[0] for w in caught
            if str(Path(w.filename).resolve()).startswith(str(PACKAGE_DIR))
            and "Triggered internally" not in str(w.message)]


def run_protect(args: argparse.Namespace, image_path: Path, label_path: Path, outputs: Dict[str, Optional[Path]],
                overwrite: bool, description: Optional[str] = None, profile: Optional["Profile"] = None,
                copies: Optional[Dict[Path, Path]] = None) -> Tuple[dict, List[Path]]:
    """Protect one study from files and write the outputs all together; returns the report and the files written.

    `profile` is the already loaded --profile file (a dataset run loads it once per worker); `copies` maps input
    files to copy unchanged (a dataset run's labels) onto targets written in the same transaction.
    """
    from . import __version__
    from .engine import protect
    from .preview import preview_png
    from .profile import load_profile, save_profile

    output, difference, preview = outputs["output"], outputs.get("difference"), outputs.get("preview")
    profile_path = getattr(args, "profile", None)
    profile_path = Path(profile_path) if profile_path else None
    inputs = input_files(image_path, label_path, profile_path)
    _check_output_types(output, difference, preview)
    check_outputs(outputs, inputs, overwrite)

    if profile is None and profile_path is not None:
        profile = load_profile(profile_path)
    settings = settings_from(args, profile.settings if profile is not None else None)
    image = read_image(image_path)
    label = read_label(label_path, image)
    records = {"image": file_record(image_path, image.data_files),
               "label": file_record(label_path, input_files(label_path)[1:])}
    if profile_path is not None:
        records["profile"] = file_record(profile_path)
    progress = reporter(args.progress)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = protect(image.array, label.array, image.spacing_xyz, settings, progress, profile=profile)
    report = dict(result.report)
    report["warnings"] = list(label.warnings) + list(report.get("warnings") or []) + _engine_warnings(caught)
    report.update({
        "command": "demo" if description else "protect",
        "study": description,
        "umed_protect_version": __version__,
        "inputs": records,
        "sha256": {role: record["sha256"] for role, record in records.items()},
        "outputs": {role: str(resolved(path)) for role, path in outputs.items() if path is not None},
        "image": {"shape": list(image.array.shape), "dtype": str(image.array.dtype), "spacing": list(image.spacing),
                  "origin": list(image.origin), "direction": list(image.direction)},
        "label_names": {str(k): v for k, v in label.names.items()},
    })
    emit(progress, "write", 1.0, "writing the outputs")
    with OutputTransaction(overwrite=overwrite, keep_intact=inputs) as transaction:
        stage_image(transaction, result.protected, image, output)
        if difference is not None:
            stage_image(transaction, result.difference, image, difference)
        if preview is not None:
            window = report["visibility"]["window"]
            transaction.stage(preview).write_bytes(preview_png(
                image.array, result.protected, label.array > 0, report["epsilon_native"],
                (window["low"], window["high"]), image.spacing, image.direction, window["name"]))
        for source, target in (copies or {}).items():
            shutil.copyfile(source, transaction.stage(target))
        if outputs.get("profile_out") is not None:
            save_profile(result.profile, transaction.stage(outputs["profile_out"]))
        if outputs.get("report") is not None:
            transaction.stage(outputs["report"]).write_bytes(report_json(report))
        written = transaction.commit()
    return report, written


def protect_command(args: argparse.Namespace) -> int:
    """`umed-protect protect`: protect one study given as image and label files."""
    optional = {name: Path(getattr(args, name)) if getattr(args, name) else None
                for name in ("difference", "report", "preview", "profile_out")}
    report, written = run_protect(args, Path(args.image), Path(args.label), {"output": Path(args.output), **optional},
                                  args.overwrite)
    print("\n".join(summary_lines(report, written)), file=message_stream(args))
    return 0


def demo_command(args: argparse.Namespace) -> int:
    """`umed-protect demo`: protect the embedded sample study and write the four demo files."""
    from .sample import SAMPLE_SLICES, sample_paths

    image_path, label_path = sample_paths()
    folder = Path(args.output_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(f"cannot create the output folder {str(folder)!r}: {error.strerror}") from None
    outputs = {role: folder / name for role, name in DEMO_FILES.items()}
    description = (f"embedded sample: MNI152 T1 template slices {SAMPLE_SLICES[0]}-{SAMPLE_SLICES[1] - 1}, "
                   "label 1 = lateral ventricles")
    stream = message_stream(args)
    print(f"umed-protect demo: {description}", file=stream)
    report, written = run_protect(args, image_path, label_path, outputs, overwrite=True, description=description)
    print("\n".join(summary_lines(report, written)), file=stream)
    return 0


def fit_profile_command(args: argparse.Namespace) -> int:
    """`umed-protect fit-profile`: fit one protection profile on a dataset of image/label pairs."""
    from .data_parallel import is_writer, join_torchrun
    from .datasets import find_pairs
    from .engine import fit_profile
    from .profile import save_profile

    profile_out = Path(args.profile_out)
    report_path = Path(args.report) if args.report else None
    pairs = find_pairs(args.dataset)
    inputs = input_files(*[path for pair in pairs for path in pair])
    check_outputs({"profile_out": profile_out, "report": report_path}, inputs, args.overwrite)
    settings = join_torchrun(settings_from(args))  # under torchrun: one rank of a DistributedDataParallel fit
    stream = message_stream(args)
    progress = reporter(args.progress) if is_writer() else None
    studies, notes = [], []
    for index, (image_path, label_path) in enumerate(pairs):
        emit(progress, "read", 0.0, f"reading study {index + 1}/{len(pairs)}: {image_path.name}")
        image = read_image(image_path)
        label = read_label(label_path, image)
        notes += [f"{image_path.name}: {warning}" for warning in label.warnings]
        studies.append((image.array, label.array))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profile = fit_profile(studies, settings, progress)
    notes += _engine_warnings(caught)
    if not is_writer():
        return 0
    with OutputTransaction(overwrite=args.overwrite, keep_intact=inputs) as transaction:
        save_profile(profile, transaction.stage(profile_out))
        if report_path is not None:
            from . import __version__

            report = {"command": "fit-profile", "umed_protect_version": __version__, "settings": settings.to_dict(),
                      "profile": dict(profile.info), "warnings": notes,
                      "inputs": [{"image": file_record(image_path, data_files(image_path)),
                                  "label": file_record(label_path, input_files(label_path)[1:])}
                                 for image_path, label_path in pairs],
                      "outputs": {"profile": str(resolved(profile_out)), "report": str(resolved(report_path))}}
            transaction.stage(report_path).write_bytes(report_json(report))
        written = transaction.commit()
    for note in notes:
        print(f"  warning: {note}", file=stream)
    print(f"fitted a profile on {len(pairs)} studies ({profile.info.get('slices', '?')} slices) in "
          f"{profile.info.get('runtime_s', 0.0):.1f} s on {profile.info.get('device', '?')}", file=stream)
    for path in written:
        print(f"  wrote {path}", file=stream)
    return 0
