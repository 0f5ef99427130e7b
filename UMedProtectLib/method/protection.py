"""The public engine: protect a study (fitting on it or applying a profile) and fit a profile on a dataset."""

import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..budget import standard_windows
from ..errors import InputError
from ..progress import CancelFlag, ProgressCallback, emit
from ..settings import ProtectSettings
from ..marks.embed import Marking, contour_sign
from .measures.budget_strength import budget_strength, mean_shift_warnings, visibility_warnings, window_warnings
from .devices.device import resolve_device, run_with_memory_fallback
from .inference import window_deltas
from .intensity import IntensityScale, add_perturbation, smallest_change
from .modality import HeaderModality, read_study
from .profile import Profile, make_perturbation
from .measures.texture_change import texture_ratios, texture_warnings
from .fitting.training import fit_perturbation
from .measures.visibility import mean_shift, protection_metrics, visibility
from .windows import Window, build_windows

Study = Tuple[np.ndarray, np.ndarray]
# Each label is a class of the surrogate; thousands of values mean an image was given as the label map.
MAX_LABELS = 1000


@dataclass
class ProtectionResult:
    """The protected volume (input dtype), the signed difference in native units, the report and the profile."""

    protected: np.ndarray
    difference: np.ndarray
    report: Dict
    profile: Optional[Profile]  # None for design none, which fits nothing


def as_volume(image: np.ndarray, label: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Check an image/label pair and view 2D pairs as one-slice volumes."""
    image, label = np.asarray(image), np.asarray(label)
    if image.ndim == 2:
        image, label = image[None], label[None] if label.ndim == 2 else label
    if image.ndim != 3:
        raise InputError(f"the image has {image.ndim} dimensions; give a 2D or 3D scalar image (not 4D or vector)")
    if label.shape != image.shape:
        raise InputError(f"the label's shape {label.shape} differs from the image's {image.shape}")
    if not (np.issubdtype(image.dtype, np.integer) or np.issubdtype(image.dtype, np.floating)):
        raise InputError(f"the image's voxel type {image.dtype} is not a number type")
    if np.issubdtype(image.dtype, np.floating) and not np.isfinite(image).all():
        raise InputError("the image contains NaN or infinite voxels; fix or mask them before protecting")
    if np.issubdtype(label.dtype, np.floating) and not np.array_equal(label, np.round(label)):
        raise InputError("the label map has non-integer values; give a label map, not a probability map")
    return image, label


def chosen_labels(label: np.ndarray, wanted: Optional[Sequence[int]]) -> Tuple[int, ...]:
    """The label values that form the ROI: the wanted ones (all must be present) or every value > 0."""
    present = [int(v) for v in np.unique(label) if v > 0]
    if not present:
        raise InputError("the label map is empty (no voxel > 0); there is no region to protect")
    if wanted is None and len(present) > MAX_LABELS:
        raise InputError(f"the label map holds {len(present)} different values > 0 (at most {MAX_LABELS}); is it an "
                         "image rather than a label map? Choose the labels to protect with --labels")
    if wanted is None:
        return tuple(present)
    missing = sorted(set(wanted) - set(present))
    if missing:
        raise InputError(f"label(s) {', '.join(map(str, missing))} are not in the label map, which holds "
                         f"{', '.join(map(str, present))}")
    return tuple(sorted(wanted))


def _stage(progress: Optional[ProgressCallback], stage: str, start: float, end: float):
    """A callback mapping a stage's own 0..1 onto the job's [start, end]."""
    return lambda fraction, message: emit(progress, stage, start + (end - start) * fraction, message)


def _fit(windows: List[Window], num_classes: int, settings: ProtectSettings, epsilon: float, device: torch.device,
         on_step, cancel: Optional[CancelFlag]) -> Tuple[torch.nn.Module, Dict, torch.device]:
    """Fit a fresh, seeded perturbation at `epsilon` (a fraction of the robust range), retrying on smaller batches
    or the CPU when the GPU runs out of memory."""

    def job(run_device: torch.device, batch_size: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            perturbation = make_perturbation(settings)
            log = fit_perturbation(perturbation, windows, num_classes, settings, epsilon, run_device, batch_size,
                                   on_step, cancel)
        return perturbation, log, run_device

    return run_with_memory_fallback(job, device, settings.batch_size)


def fit_profile(studies: Sequence[Study], settings: ProtectSettings = ProtectSettings(),
                progress: Optional[ProgressCallback] = None, cancel: Optional[CancelFlag] = None,
                headers: Optional[Sequence[Optional[HeaderModality]]] = None) -> Profile:
    """Fit one perturbation on many image/label pairs, each normalised on its own, and return it as a profile.

    Args:
        studies: (image, label) pairs, each as `protect` takes them; the studies may differ in shape and type.
        settings: The protection settings. The budget is resolved per study and the fit uses the median of the
            studies' budgets as a fraction of each one's window.
        progress: Called with a `Progress` event at each stage and fitting step; None for silence.
        cancel: Polled during the fit; when it returns True the fit stops.
        headers: What each study's own header says it is, in the studies' order (as `protect`'s `header`); None:
            every study is told by `settings.modality` or the air rule.

    Returns:
        The fitted `Profile`: generator weights, the settings and the fit's record in `info`. Save it with
        `save_profile` and apply it with `protect(..., profile=profile)`.

    Raises:
        InputError: The dataset is empty, a pair is not a valid image and label map, no study holds the chosen
            labels, or the device asked for is not available.
        Cancelled: `cancel` returned True.
    """
    start = time.perf_counter()
    volumes = [as_volume(image, label) for image, label in studies]
    if not volumes:
        raise InputError("the dataset is empty; give at least one image/label pair")
    labels = settings.labels or tuple(sorted({int(v) for _, label in volumes for v in np.unique(label) if v > 0}))
    windows: List[Window] = []
    epsilons: List[float] = []
    for index, (image, label) in enumerate(volumes):
        emit(progress, "prepare", 0.05 * index / len(volumes), f"study {index + 1}/{len(volumes)}")
        roi = np.isin(label, labels)
        if roi.any():
            scale = IntensityScale.from_image(image, settings.percentiles)
            reading = read_study(image, roi, settings.modality, headers[index] if headers else None)
            epsilons.append(settings.budget_for(scale.low, scale.high, reading).epsilon)
            windows += build_windows(image, label, labels, scale, settings.band_width, settings.margin,
                                     settings.design_spec.whole_roi_inside)
    if not windows:
        raise InputError("no study in the dataset contains the chosen labels; check --labels and the label files")
    device = resolve_device(settings.device)
    # A budget in HU, in a window or by default is a different fraction of each study's range; one fit uses the median.
    fitted_epsilon = float(np.median(epsilons))
    perturbation, log, device = _fit(windows, len(labels) + 1, settings, fitted_epsilon, device,
                                     _stage(progress, "fit", 0.05, 1.0), cancel)
    info = {"mode": "dataset", "studies": len(volumes), "slices": len(windows), "labels": list(labels),
            "device": str(device), "runtime_s": time.perf_counter() - start, "fitted_epsilon": fitted_epsilon,
            "training": log}
    emit(progress, "done", 1.0, f"profile fitted on {len(volumes)} studies, {len(windows)} slices")
    return Profile.from_perturbation(perturbation, settings, info)


def _with_mark(deltas: List[np.ndarray], windows: List[Window], mark: Marking, volume: np.ndarray, roi: np.ndarray,
               amplitude: float, band_width: int) -> List[np.ndarray]:
    """Each window's change plus the key's mark (normalised units): +pattern in the ROI, -pattern on its outer band."""
    pattern = mark.pattern(volume)
    out = []
    for window, delta in zip(windows, deltas):
        rows, cols = window.valid
        where = (np.s_[window.y0:window.y0 + rows], np.s_[window.x0:window.x0 + cols])
        delta = delta.copy()
        delta[:rows, :cols] += amplitude * contour_sign(roi[window.z][where], band_width) * pattern[where]
        out.append(delta)
    return out


def protect(image: np.ndarray, label: np.ndarray, spacing: Optional[Sequence[float]] = None,
            settings: ProtectSettings = ProtectSettings(), progress: Optional[ProgressCallback] = None,
            cancel: Optional[CancelFlag] = None, profile: Optional[Profile] = None,
            header: Optional[HeaderModality] = None, stored_step: Optional[float] = None,
            mark: Optional[Marking] = None) -> ProtectionResult:
    """Protect one study: fit UMed on it (or apply `profile`) and perturb only the ROI and its contour band.

    Args:
        image: The study, a 2D (y, x) or 3D (z, y, x) array of any number type, in SimpleITK order: axis 0 is the
            axial slice. It is not modified.
        label: The label map on the image's grid, integer values; the voxels with the chosen labels are the ROI.
        spacing: The voxel spacing, recorded in the report only.
        settings: The protection settings (budget, design, band width, training effort, device, seed...).
        progress: Called with a `Progress` event at each stage and fitting step; None for silence.
        cancel: Polled during the fit and the perturbation; when it returns True the run stops.
        profile: A profile fitted before (`fit_profile`, `load_profile`): its generators are applied in one forward
            pass instead of fitting on this study, and its design replaces the one in `settings`.
        header: What the study's own header says it is (a DICOM series' Modality and rescale:
            files/header_modality.py); it tells a CT in HU unless `settings.modality` says; None: the air rule.
        stored_step: The step between the values the output can store when it is coarser than the image's type (a
            DICOM series' rescale slope: its rescaled voxels are read as reals): every change is a whole number of
            such steps, so that `protected`, `difference` and the report are what is written. None: 1 for an
            integer image, no grid for a real one.
        mark: The owner's keyed mark to embed as well (marks/): it takes half the budget beside the design's change,
            all of it with design `none`.

    Returns:
        A `ProtectionResult`: `protected` (the image's shape and type), `difference` (protected minus image, in the
        image's units), `report` (metrics, visibility, budget, threat model and warnings, as the report JSON) and
        `profile` (the generators fitted on this study, or the profile given).

    Raises:
        InputError: The image or label map is not valid (shape, type, NaN, no ROI, labels not present), the budget
            is out of range or would change no voxel, or the device asked for is not available.
        Cancelled: `cancel` returned True.
    """
    start = time.perf_counter()
    overridden: List[str] = []
    if profile is not None:
        settings, overridden = profile.applied_to(settings)
    volume, label_volume = as_volume(image, label)
    labels = chosen_labels(label_volume, settings.labels)
    scale = IntensityScale.from_image(volume, settings.percentiles)
    roi = np.isin(label_volume, labels)
    reading = read_study(volume, roi, settings.modality, header, stored_step)
    budget = settings.budget_for(scale.low, scale.high, reading)
    budget.check_changes(smallest_change(volume.dtype, scale, reading.step), reading)
    emit(progress, "prepare", 0.0, f"{volume.shape[0]} slices, labels {', '.join(map(str, labels))}")
    windows = build_windows(volume, label_volume, labels, scale, settings.band_width, settings.margin,
                            settings.design_spec.whole_roi_inside)
    device = resolve_device(settings.device)
    designed = settings.design_spec.build is not None
    if not designed and mark is None:
        raise InputError("design 'none' changes nothing by itself; give --mark KEY or choose a design")
    fitting = profile is None and designed
    if not designed:
        training, deltas = None, [np.zeros(w.band.shape, np.float32) for w in windows]
    elif fitting:
        perturbation, training, device = _fit(windows, len(labels) + 1, settings, budget.epsilon, device,
                                              _stage(progress, "fit", 0.05, 0.9), cancel)
        profile = Profile.from_perturbation(perturbation, settings, {
            "mode": "study", "studies": 1, "slices": len(windows), "labels": list(labels), "training": training})
    else:
        perturbation, training = profile.perturbation(), profile.info.get("training")
    if designed:
        emit(progress, "apply", 0.9 if fitting else 0.3, f"perturbing {len(windows)} slices")
        deltas = window_deltas(perturbation, windows, budget.epsilon, device, cancel)
    share = mark.budget_share(designed) if mark is not None else 0.0
    deltas = [(1.0 - share) * delta for delta in deltas]
    if mark is not None:
        deltas = _with_mark(deltas, windows, mark, volume, roi, share * budget.epsilon, settings.band_width)

    protected = volume.copy()
    region = np.zeros(volume.shape, dtype=bool)
    native_range = (float(volume.min()), float(volume.max()))
    for window, delta in zip(windows, deltas):
        rows, cols = window.valid
        where = (window.band | window.interior)[:rows, :cols]
        target = protected[window.z, window.y0:window.y0 + rows, window.x0:window.x0 + cols]
        target[where] = add_perturbation(target[where], delta[:rows, :cols][where], scale, native_range, budget.native,
                                         reading.step)
        region[window.z, window.y0:window.y0 + rows, window.x0:window.x0 + cols] |= where
    # Slice by slice: a whole-volume float64 difference of a 512x512x600 CT alone raised the peak by gigabytes
    # (docs/guarantees.md, memory).
    # float32 unless the image is float64, whose changes float32 would round (and the report under-state).
    difference = np.zeros(volume.shape, dtype=np.float64 if volume.dtype == np.float64 else np.float32)
    for z in {window.z for window in windows}:
        difference[z] = protected[z].astype(np.float64) - volume[z].astype(np.float64)

    emit(progress, "metrics", 0.95 if fitting else 0.8, "computing PSNR and SSIM")
    strength = budget_strength(windows, budget.epsilon)
    changed_slices = [w.z for w in windows]
    report = protection_metrics(volume, protected, difference, region, scale, changed_slices)
    report["visibility"] = visibility(volume, protected, roi, budget.window, changed_slices)
    report["visibility"]["budget_of_window"] = budget.of_window
    touched = sorted(set(changed_slices))
    report["texture"] = texture_ratios(volume[touched], protected[touched], roi[touched], settings.band_width)
    # A CT is read in several windows: the change as each standard window shows it, warned where it is visible.
    report["standard_windows"] = [visibility(volume, protected, roi, window, changed_slices)
                                  for window in (standard_windows() if reading.ct else ())]
    report["mean_shift"] = mean_shift(difference, roi, budget.native, budget.window)
    report.update({
        "epsilon": budget.epsilon,
        "epsilon_native": budget.native,
        "epsilon_given": budget.given,
        "intensity_range": [scale.low, scale.high],
        "reading": reading.to_dict(),
        "roi_slices": len(windows),
        "roi_voxels": int(sum(np.count_nonzero(w.classes[:w.valid[0], :w.valid[1]]) for w in windows)),
        "labels": list(labels),
        "spacing": [float(s) for s in spacing] if spacing is not None else None,
        "mode": "fit-study" if fitting else "profile" if designed else "mark-only",
        "profile_info": ({k: v for k, v in profile.info.items() if k != "training"} if designed and not fitting
                         else None),
        "device": str(device),
        "seed": settings.seed,
        "settings": settings.to_dict(),
        "training": training,
        "budget": {k: v for k, v in strength.items() if k != "warnings"},
        "threat_model": settings.design_spec.threat_model(),
        "mark": (mark.report(share * budget.epsilon, share * budget.native, share) if mark is not None else None),
        "warnings": (overridden + strength["warnings"] + visibility_warnings(budget.epsilon, float(region.mean()))
                     + window_warnings(report["standard_windows"], reading)
                     + mean_shift_warnings(report["mean_shift"], settings.design)
                     + texture_warnings(report["texture"])),
        "runtime_s": time.perf_counter() - start,
    })
    emit(progress, "done", 1.0, f"PSNR {report['psnr_db'] or float('inf'):.2f} dB")
    shape = np.shape(image)
    return ProtectionResult(protected.reshape(shape), difference.reshape(shape), report, profile)
