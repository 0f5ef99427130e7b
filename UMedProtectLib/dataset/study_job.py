"""The per-study job of `protect-dataset`: what to write where, the study's seed, and the run on a worker.

A job is plain data (picklable for Dask). `run_study` protects the study through the same path as
`umed-protect protect` (its commands.ProtectJob run by commands.protect_study: one transaction for the protected
image, the optional difference map and the unchanged label copy) and returns the study's manifest record; a bad
study comes back as a record with status "failed" and its one-line error instead of raising, so the run goes on.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import InputError
from ..files.dicom import is_series_input
from ..files.formats import image_extension
from ..method.profile import Profile
from ..pipeline.study import ProtectJob, ProtectOutputs, input_files, protect_study
from ..settings import ProtectSettings
from .layouts import relative_path

# The report figures copied into the manifest (the full report would make each line several kB).
METRICS = ("psnr_db", "psnr_roi_db", "ssim", "ssim_roi_slices", "linf_native", "epsilon_native",
           "changed_fraction", "roi_slices", "runtime_s", "device")


@dataclass(frozen=True)
class StudyJob:
    """One study of a dataset run: its inputs, where its outputs go, and its seed."""

    study: str  # the image's path relative to the dataset root, with forward slashes: the study's name
    image: Path
    label: Path
    root: Path  # the dataset root
    output_dir: Path
    seed: int
    difference: bool
    mark: Optional[Path] = None  # the owner's key file whose mark every study gets

    def inputs(self) -> List[Path]:
        """The input files whose hashes identify this study: image, label and their separate data files."""
        return input_files(self.image, self.label)

    def outputs(self) -> Dict[str, Path]:
        """The protected image and, when asked, the difference map, under the image's relative path."""
        output = self.output_dir / relative_path(self.image, self.root)
        paths = {"output": output}
        if self.difference and is_series_input(self.image):  # the series' difference in HU, as NRRD beside it
            paths["difference"] = output.with_name(output.name + "_difference.nrrd")
        elif self.difference:
            extension = image_extension(output)
            paths["difference"] = output.with_name(output.name[: -len(extension)] + "_difference" + extension)
        return paths

    def copies(self) -> Dict[Path, Path]:
        """The label file and its data files, to be copied unchanged under their relative paths."""
        return {path: self.output_dir / relative_path(path, self.root) for path in input_files(self.label)}

    def dicom_outputs(self) -> List[Path]:
        """The DICOM files this study writes: its derived series' instances and a SEG or RTSTRUCT beside them."""
        if not is_series_input(self.image):
            return []
        from ..files.dicom.labels import is_dicom_label
        from ..files.dicom.series import series_files

        return [*series_files(self.outputs()["output"]),
                *(target for source, target in self.copies().items() if is_dicom_label(source))]

    def protect_job(self, settings: ProtectSettings, profile: Optional[Path], device: Optional[str]) -> ProtectJob:
        """This study's protection: the run's settings with the study's own seed (and the worker's device, if any)."""
        return ProtectJob(self.image, self.label, ProtectOutputs(**self.outputs()),
                          settings.with_changes(seed=self.seed, device=device or settings.device), profile=profile,
                          overwrite=True, copies=self.copies(), folder=self.output_dir, mark=self.mark)


def study_seed(run_seed: int, study: str) -> int:
    """The seed of one study: from the run's seed and the study's relative path, so independent of order."""
    digest = hashlib.sha256(f"{run_seed}\0{study}".encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_jobs(pairs: Sequence[Tuple[Path, Path]], root: Path, output_dir: Path, run_seed: int,
              difference: bool, mark: Optional[Path] = None) -> List[StudyJob]:
    """One job per image/label pair; refuses pairs outside the root and two studies writing the same file."""
    jobs: List[StudyJob] = []
    owners: Dict[Path, StudyJob] = {}
    for image, label in pairs:
        study = relative_path(image, root).as_posix()
        job = StudyJob(study, image, label, root, output_dir, study_seed(run_seed, study), difference, mark)
        for target in [*job.outputs().values(), *job.copies().values()]:
            other = owners.get(target)
            if other is not None and other.study == study:  # e.g. a CSV's rows: last would win, resumes would flip
                raise InputError(f"the dataset lists the image {str(image)!r} twice (with labels {str(other.label)!r} "
                                 f"and {str(label)!r}); both would write {str(target)!r}: list each study once")
            if other is not None:
                raise InputError(f"studies {other.study!r} and {study!r} would both write {str(target)!r}; "
                                 "give every file its own name")
            owners[target] = job
        jobs.append(job)
    return jobs


def input_hashes(job: StudyJob) -> Dict[str, str]:
    """SHA-256 of the study's input files, keyed by their paths relative to the dataset root."""
    from ..files.reports import sha256_file

    return {relative_path(path, job.root).as_posix(): sha256_file(path) for path in job.inputs()}


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MB (on a Dask worker: the worker's own peak so far)."""
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 2**10)


def run_study(job: StudyJob, settings: ProtectSettings, profile_path: Optional[Path] = None,
              profile: Optional[Profile] = None, device: Optional[str] = None) -> dict:
    """Protect one study and return its manifest record ("done" or "failed"); never raises for a bad study.

    `settings` are the run's (the study's seed replaces theirs); `profile` is `profile_path` already loaded.
    """
    from .. import __version__
    from ..files.reports import sha256_file

    started = time.time()
    record = {"study": job.study, "seed": job.seed, "engine_version": __version__, "started": started,
              "image": str(job.image), "label": str(job.label)}
    try:
        record["input_sha256"] = input_hashes(job)
        for target in [*job.outputs().values(), *job.copies().values()]:
            target.parent.mkdir(parents=True, exist_ok=True)
        report, written = protect_study(job.protect_job(settings, profile_path, device), profile)
        record.update({
            "status": "done",
            "outputs": {relative_path(path, job.output_dir).as_posix(): sha256_file(path) for path in written},
            "metrics": {key: report.get(key) for key in METRICS},
            "settings": report.get("settings"),
            "mark": report.get("mark"),
            "warnings": report.get("warnings") or [],
        })
    except Exception as error:  # noqa: BLE001 - one bad study must not stop the dataset
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        kind = "" if isinstance(error, InputError) else f"{type(error).__name__}: "
        record.update({"status": "failed", "error": f"{kind}{message}" or type(error).__name__})
        if not isinstance(error, InputError):
            record["traceback"] = traceback.format_exc(limit=-3)
    record.update({"finished": time.time(), "seconds": time.time() - started, "peak_rss_mb": peak_memory_mb(),
                   "worker": f"{socket.gethostname()}:{os.getpid()}"})
    return record
