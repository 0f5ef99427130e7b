"""One study from files to files: read it, protect it, write every output together or none (`protect_study`)."""

from __future__ import annotations

import shutil
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Mapping, Optional, Tuple

from ..console import reporter
from ..errors import InputError
from ..files.dicom.study import check_series_output, companion_files, read_study, series_output
from ..files.image_io import stage_image
from ..files.reports import command_report, file_record, report_json
from ..files.roles import check_paths
from ..files.transaction import OutputTransaction, created_folders
from ..progress import emit
from ..settings import ProtectSettings

if TYPE_CHECKING:
    from ..method.profile import Profile

# A report keeps the warnings raised from cli/'s files, as before the pipeline left cli/; method/'s own (the GPU's
# out-of-memory fallback) never matched: a gap kept while this change must leave behaviour as it was.
WARNING_SOURCES = Path(__file__).resolve().parents[1] / "cli"


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


def input_files(*paths: Optional[Path]) -> List[Path]:
    """The given input files (not folders) and the files they stand for: data files, a DICOM series' files."""
    files: List[Path] = []
    for path in paths:
        if path is not None:
            files += ([] if path.is_dir() else [path]) + companion_files(path)
    return files


def engine_warnings(caught: List[warnings.WarningMessage]) -> List[str]:
    """Messages of the warnings that the engine itself raised (e.g. a fall back from GPU to CPU).

    PyTorch's own C++ warnings are attributed to the engine line that triggered them; they are
    developer diagnostics, not facts about the run, and stay out of the report.
    """
    return [str(w.message).splitlines()[0] for w in caught
            if str(Path(w.filename).resolve()).startswith(str(WARNING_SOURCES))
            and "Triggered internally" not in str(w.message)]


def protect_study(job: ProtectJob, profile: Optional["Profile"] = None) -> Tuple[dict, List[Path]]:
    """Protect one study from files and write the outputs all together; returns the report and the files written.

    `profile` is job.profile already loaded (a dataset run loads it once per worker); otherwise it is loaded here.
    """
    from ..files.dicom.labels import is_dicom_label
    from ..files.dicom.references import stage_rereferenced_label
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
        [*label.warnings, *(result.report.get("warnings") or []), *engine_warnings(caught)], study=job.study,
        sha256={role: record["sha256"] for role, record in records.items()},
        image={"shape": list(image.array.shape), "dtype": str(image.array.dtype), "spacing": list(image.spacing),
               "origin": list(image.origin), "direction": list(image.direction)},
        label_names={str(k): v for k, v in label.names.items()},
        **({"dicom": {"series_uid": series.series_uid, "frame_of_reference": series.frame_of_reference,
                      "rescale": [series.slope, series.intercept], "slices": len(series.files)}} if series else {}))
    emit(progress, "write", 1.0, "writing the outputs")
    folders = [target.parent for target in series_targets(series, outputs.output)] if to_series else []
    with created_folders(folders), transaction:
        derived = None
        if to_series:
            derived = stage_series(transaction, result.protected, series, outputs.output,
                                   derivation_description(report))
            report["dicom"]["derived_series_uid"] = derived.series_uid
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
            if derived is not None and is_dicom_label(source):  # a PACS must attach it to the protected series
                stage_rereferenced_label(transaction, source, target, derived)
            else:
                shutil.copyfile(source, transaction.stage(target))
        if outputs.profile_out is not None:
            if result.profile is None:
                raise InputError("--profile-out: design 'none' fits nothing to save; choose a design")
            save_profile(result.profile, transaction.stage(outputs.profile_out))
        if outputs.report is not None:
            transaction.stage(outputs.report).write_bytes(report_json(report))
        written = transaction.commit()
    return report, written
