"""The black-box audit on files: `prepare` writes blinded probe studies, `verdict` tests a suspect's label maps.

PROBES/ (what `prepare` writes; the folder is created, never reused):
- `probes/probe-NNNNN.nii.gz`: the studies to send to the suspect model, nothing else in that folder;
- `rois/study-NNN.nii.gz`: each held-out study's ROI, which the verdict reads the answers in (keep it);
- `audit.json`: the key's fingerprint, the audit's nonce, the probes of each study and a tag that binds them to
  the key. Which probe carries the key's mark is not written anywhere: the key and the nonce decide it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from ..errors import InputError
from ..progress import ProgressCallback, emit
from ..settings import ProtectSettings
from . import DEFAULT_MARK, MARKS
from .embed import faded, mark_change, roi_response
from .key import OwnerKey
from .probes import DEFAULT_CONTROLS, DEFAULT_FADE, DEFAULT_PROBE_GAIN, mark_seeds
from .statistics import MarkTest, mark_test

FORMAT = "umed-protect-audit-v1"
PROBE_EXTENSION = ".nii.gz"
# A prediction may carry nnU-Net's channel suffix, or come back in any format the tool reads.
_PREDICTION_NAME = re.compile(r"^(probe-\d{5})(?:_0000)?\.(nii\.gz|nii|nrrd|mha|mhd|nhdr)$", re.IGNORECASE)
MAX_CONTROLS = 9999


@dataclass(frozen=True)
class AuditPlan:
    """What `prepare` decided: the mark, its controls, the probes of each study and where the key's mark went."""

    fingerprint: str
    nonce: str
    mark: str
    controls: int
    fade: float
    probe_gain: float
    studies: Tuple[str, ...]

    def probe_names(self, key: OwnerKey) -> np.ndarray:
        """(marks, studies) array of probe names in the marks' order of `mark_seeds`: a secret permutation."""
        count = (self.controls + 1) * len(self.studies)
        order = np.random.default_rng(key.seed(f"names/{self.nonce}")).permutation(count)
        return np.array([f"probe-{index:05d}" for index in order]).reshape(self.controls + 1, len(self.studies))

    def content(self) -> Dict:
        return {"format": FORMAT, "fingerprint": self.fingerprint, "nonce": self.nonce, "mark": self.mark,
                "controls": self.controls, "fade": self.fade, "probe_gain": self.probe_gain,
                "studies": list(self.studies)}


def _tag(key: OwnerKey, content: Dict) -> str:
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hmac.new(key.derive("audit-tag"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def study_amplitude(volume: np.ndarray, roi: np.ndarray, settings: ProtectSettings, header=None) -> float:
    """The mark's amplitude in the study's units: its budget as `protect` resolves it with `settings` and the
    study's header (method/modality.py)."""
    from ..method.intensity import IntensityScale
    from ..method.modality import read_study

    scale = IntensityScale.from_image(volume, settings.percentiles)
    return settings.budget_for(scale.low, scale.high, read_study(volume, roi, settings.modality, header)).native


def stored(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float voxels in the image's own type: rounded and clipped to an integer type's range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _write(array: np.ndarray, reference: sitk.Image, path: Path) -> None:
    image = sitk.GetImageFromArray(array.reshape(sitk.GetArrayViewFromImage(reference).shape))
    image.CopyInformation(reference)
    sitk.WriteImage(image, str(path), useCompression=True)


def prepare(key: OwnerKey, studies: List[Tuple[Path, Path]], out: Path, settings: ProtectSettings = ProtectSettings(),
            mark: str = DEFAULT_MARK, controls: int = DEFAULT_CONTROLS, fade: float = DEFAULT_FADE,
            probe_gain: float = DEFAULT_PROBE_GAIN, progress: Optional[ProgressCallback] = None) -> AuditPlan:
    """Write the probe folder `out` for held-out (image, label) studies; it appears whole or not at all."""
    from ..files.dicom.study import read_study

    if not 1 <= controls <= MAX_CONTROLS:
        raise InputError(f"--controls must be 1 to {MAX_CONTROLS} (99 gives p-values down to 0.01)")
    if not 0.0 <= fade <= 1.0:
        raise InputError("--fade must be 0 to 1 (the share of the ROI's contrast a probe keeps)")
    if not 0.0 < probe_gain <= 64.0:
        raise InputError("--probe-gain must be above 0 and at most 64 (the probes' mark over the budget)")
    if mark not in MARKS:
        raise InputError(f"unknown mark {mark!r}; choose from {', '.join(MARKS)}")
    if os.path.lexists(out):
        raise InputError(f"'{out}' already exists; an audit's probes are written into a new folder")
    if not out.parent.is_dir():
        raise InputError(f"the folder of '{out}' does not exist; create it first")
    if not studies:
        raise InputError("no held-out study was given")
    plan = AuditPlan(key.fingerprint, secrets.token_hex(16), mark, controls, fade, probe_gain,
                     tuple(f"study-{index:03d}" for index in range(len(studies))))
    seeds, _ = mark_seeds(key, plan.nonce, controls)
    names = plan.probe_names(key)
    staging = Path(tempfile.mkdtemp(prefix=".umed-audit-", dir=out.parent))
    try:
        (staging / "probes").mkdir()
        (staging / "rois").mkdir()
        for column, (image_path, label_path) in enumerate(studies):
            image, label, _ = read_study(Path(image_path), Path(label_path))
            roi = label.array > 0
            if not roi.any():
                raise InputError(f"label '{label_path}' is empty; a probe study needs its ROI")
            volume = image.array
            amplitude = probe_gain * study_amplitude(volume, roi, settings, image.modality)
            base = faded(volume, roi, fade)
            _write(roi.astype(np.uint8), image.image, staging / "rois" / f"{plan.studies[column]}{PROBE_EXTENSION}")
            for row, seed in enumerate(seeds):
                emit(progress, "probes", (column * len(seeds) + row) / (len(seeds) * len(studies)),
                     f"study {column + 1}/{len(studies)}, probe {row + 1}/{len(seeds)}")
                probe = stored(base + mark_change(MARKS[mark], seed, roi, amplitude), volume.dtype)
                _write(probe, image.image, staging / "probes" / f"{names[row, column]}{PROBE_EXTENSION}")
        content = plan.content()
        (staging / "audit.json").write_text(json.dumps({**content, "tag": _tag(key, content)}, indent=1) + "\n")
        os.rename(staging, out)  # the folder appears whole; rename refuses a folder that appeared meanwhile
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    emit(progress, "done", 1.0, f"{len(seeds) * len(studies)} probes in {out / 'probes'}")
    return plan


def load_plan(key: OwnerKey, probes: Path) -> AuditPlan:
    """The plan in PROBES/audit.json, checked against the key."""
    try:
        data = json.loads((probes / "audit.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise InputError(f"'{probes}' holds no readable audit.json; give the folder 'audit prepare' wrote") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise InputError(f"'{probes / 'audit.json'}' is not an audit of this tool ({FORMAT})")
    if data.get("fingerprint") != key.fingerprint:
        raise InputError(f"the probes in '{probes}' were prepared with another key (fingerprint "
                         f"{str(data.get('fingerprint'))[:16]}..., this key's is {key.fingerprint[:16]}...)")
    try:
        plan = AuditPlan(data["fingerprint"], data["nonce"], data["mark"], int(data["controls"]), float(data["fade"]),
                         float(data["probe_gain"]), tuple(data["studies"]))
    except (KeyError, TypeError, ValueError):
        raise InputError(f"'{probes / 'audit.json'}' misses what the verdict needs; was it changed?") from None
    if not hmac.compare_digest(str(data.get("tag")), _tag(key, plan.content())):
        raise InputError(f"'{probes / 'audit.json'}' was changed after it was written (its tag does not match)")
    return plan


def _predictions(folder: Path, expected: set) -> Dict[str, Path]:
    """Probe name -> the suspect's label map in `folder`; missing, extra or doubled answers are refused."""
    if not folder.is_dir():
        raise InputError(f"predictions folder '{folder}' does not exist")
    found: Dict[str, Path] = {}
    extra: List[str] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name.endswith(".json"):  # nnU-Net writes its settings beside them
            continue
        match = _PREDICTION_NAME.match(path.name)
        if match is None or match.group(1) not in expected:
            extra.append(path.name)
        elif match.group(1) in found:
            raise InputError(f"probe {match.group(1)} has two predictions in '{folder}'")
        else:
            found[match.group(1)] = path
    if extra:
        raise InputError(f"'{folder}' holds {len(extra)} file(s) that answer no probe of this audit, e.g. "
                         f"'{extra[0]}'")
    missing = sorted(expected - set(found))
    if missing:
        raise InputError(f"{len(missing)} of {len(expected)} probes have no prediction in '{folder}', e.g. "
                         f"{missing[0]}")
    return found


def _same_grid(a: sitk.Image, b: sitk.Image) -> bool:
    return (a.GetSize() == b.GetSize() and np.allclose(a.GetSpacing(), b.GetSpacing(), rtol=1e-4)
            and np.allclose(a.GetOrigin(), b.GetOrigin(), atol=1e-3)
            and np.allclose(a.GetDirection(), b.GetDirection(), atol=1e-4))


def verdict(key: OwnerKey, probes: Path, predictions: Path,
            progress: Optional[ProgressCallback] = None) -> Tuple[AuditPlan, MarkTest, np.ndarray]:
    """The test on the suspect's label maps: the plan, the result and the responses (marks, studies)."""
    plan = load_plan(key, probes)
    names = plan.probe_names(key)
    answers = _predictions(predictions, set(names.ravel()))
    responses = np.zeros(names.shape)
    for column, study in enumerate(plan.studies):
        reference = sitk.ReadImage(str(probes / "rois" / f"{study}{PROBE_EXTENSION}"))
        roi = sitk.GetArrayFromImage(reference) > 0
        for row in range(names.shape[0]):
            emit(progress, "verdict", (column * names.shape[0] + row) / names.size, f"reading {names[row, column]}")
            path = answers[names[row, column]]
            try:
                answer = sitk.ReadImage(str(path))
            except RuntimeError:
                raise InputError(f"prediction '{path}' cannot be read as an image") from None
            if not _same_grid(answer, reference):
                raise InputError(f"prediction '{path}' is not on its probe's grid (size {answer.GetSize()} against "
                                 f"{reference.GetSize()}, or another spacing, origin or direction)")
            responses[row, column] = roi_response(sitk.GetArrayFromImage(answer), roi)
    _, position = mark_seeds(key, plan.nonce, plan.controls)
    return plan, mark_test(responses, position), responses
