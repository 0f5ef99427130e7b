"""What the `protect`, `fit-profile` and `demo` subcommands do, given their parsed arguments: they build the job,
call the engine's pipeline (pipeline/) and print its summary."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..console import message_stream, print_summary
from ..errors import InputError
from ..files.reports import summary_lines
from ..pipeline.study import ProtectJob, ProtectOutputs, protect_study
from ..settings import settings_from

DEMO_FILES = {"output": "sample_protected.nrrd", "difference": "sample_difference.nrrd",
              "report": "sample_report.json", "preview": "sample_preview.png"}


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
    report, written = protect_study(job, profile)
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
    report, written = protect_study(job)
    print_summary(summary_lines(report, written), stream)
    return 0


def fit_profile_command(args: argparse.Namespace) -> int:
    """`umed-protect fit-profile`: fit one protection profile on a dataset of image/label pairs."""
    from ..pipeline.profile_fit import fit_profile_files

    fitted = fit_profile_files(args.dataset, settings_from(args), Path(args.profile_out),
                               Path(args.report) if args.report else None, args.overwrite, args.progress)
    if fitted is None:  # a torchrun rank that does not write
        return 0
    info = fitted.profile.info
    print_summary([f"  warning: {note}" for note in fitted.notes]
                  + [f"fitted a profile on {fitted.studies} studies ({info.get('slices', '?')} slices) in "
                     f"{info.get('runtime_s', 0.0):.1f} s on {info.get('device', '?')}"]
                  + [f"  wrote {path}" for path in fitted.written], message_stream(args))
    return 0
