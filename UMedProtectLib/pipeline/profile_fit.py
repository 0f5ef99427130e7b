"""A profile fitted on a dataset's files and written with its report, together or not at all (`fit_profile_files`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from ..console import reporter
from ..files.dicom.study import companion_files, read_study
from ..files.reports import command_report, file_record, report_json
from ..files.transaction import OutputTransaction
from ..progress import emit
from ..settings import ProtectSettings
from .study import engine_warnings, input_files

if TYPE_CHECKING:
    from ..method.profile import Profile


@dataclass(frozen=True)
class FittedProfile:
    """What a fit wrote: the profile, the files, the studies' and the engine's warnings, the number of studies."""

    profile: "Profile"
    written: List[Path]
    notes: List[str]
    studies: int


def fit_profile_files(dataset: str, settings: ProtectSettings, profile_out: Path, report_path: Optional[Path],
                      overwrite: bool = False, progress: str = "none") -> Optional[FittedProfile]:
    """Fit one profile on every image/label pair of `dataset` and write it (and its report); None on a torchrun rank
    that does not write."""
    from ..dataset.layouts import find_pairs
    from ..method.devices.data_parallel import is_writer, join_torchrun
    from ..method.profile import save_profile
    from ..method.protection import fit_profile

    pairs = find_pairs(dataset)
    inputs = input_files(*[path for pair in pairs for path in pair])
    transaction = OutputTransaction(overwrite=overwrite, keep_intact=inputs)
    transaction.check({"profile_out": profile_out, "report": report_path})
    settings = join_torchrun(settings)  # under torchrun: one rank of a DistributedDataParallel fit
    listener = reporter(progress) if is_writer() else None
    studies, headers, notes = [], [], []
    for index, (image_path, label_path) in enumerate(pairs):
        emit(listener, "read", 0.0, f"reading study {index + 1}/{len(pairs)}: {image_path.name}")
        image, label, _ = read_study(image_path, label_path)
        notes += [f"{image_path.name}: {warning}" for warning in label.warnings]
        studies.append((image.array, label.array))
        headers.append(image.modality)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profile = fit_profile(studies, settings, listener, headers=headers)
    notes += engine_warnings(caught)
    if not is_writer():
        return None
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
    return FittedProfile(profile, written, notes, len(pairs))
