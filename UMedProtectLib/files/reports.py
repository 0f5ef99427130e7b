"""The report JSON of the command line (the engine's report plus provenance) and its one-screen summary."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np

from .transaction import resolved


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks (volumes can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_record(path: Path, companions: Iterable[Path] = ()) -> Dict[str, Any]:
    """Path and SHA-256 of an input file, plus those of its separate data files (.mhd/.nhdr) or, for a folder (a
    DICOM series), of its files; a folder's own SHA-256 is that of its files' paths and hashes, one per line."""
    companions = list(companions)
    files = {str(p.resolve()): sha256_file(p) for p in companions}
    if path.is_dir():
        lines = "".join(f"{Path(os.path.relpath(p, path.resolve())).as_posix()} {h}\n" for p, h in files.items())
        digest = hashlib.sha256(lines.encode("utf-8")).hexdigest()
    else:
        digest = sha256_file(path)
    record: Dict[str, Any] = {"path": str(path.resolve()), "sha256": digest}
    if files:
        record["data_files"] = files
    return record


def command_report(command: str, findings: Mapping[str, Any], inputs: Any, outputs: Mapping[str, Optional[Path]],
                   warnings: Sequence[str], **facts: Any) -> Dict[str, Any]:
    """A command's report: what it found (the engine's report, or a fitted profile's), then its provenance.

    Provenance: the command and version, the input records, the outputs written, every warning, and the
    command's own `facts` (e.g. the study's description, its geometry).
    """
    from .. import __version__

    report = dict(findings)
    report.update({"warnings": list(warnings), "command": command, "umed_protect_version": __version__,
                   "inputs": inputs, **facts,
                   "outputs": {role: str(resolved(path)) for role, path in outputs.items() if path is not None}})
    return report


def plain(value: Any) -> Any:
    """A JSON-safe copy: numpy scalars and arrays to Python, paths and tuples converted, NaN/Inf to None."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def report_json(report: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON text of a report (strict JSON: no NaN)."""
    return (json.dumps(plain(report), indent=2, allow_nan=False) + "\n").encode("utf-8")


def _number(value: Optional[float], digits: int, unit: str = "") -> str:
    """A figure for the summary; PSNR is None (infinite) when nothing changed."""
    return "inf" + unit if value is None else f"{value:.{digits}f}{unit}"


def summary_lines(report: Mapping[str, Any], written: List[Path]) -> List[str]:
    """The few lines the command prints after a protection run."""
    lines = [
        f"protected {report.get('roi_slices', '?')} ROI slices in {report.get('runtime_s', 0.0):.1f} s on "
        f"{report.get('device', '?')} ({report.get('mode', '?')})",
        f"  PSNR {_number(report.get('psnr_db'), 2, ' dB')} (ROI+band {_number(report.get('psnr_roi_db'), 2, ' dB')}), "
        f"SSIM {_number(report.get('ssim'), 5)}",
        f"  L-inf {_number(report.get('linf_native'), 4)} native units "
        f"(budget {_number(report.get('epsilon_native'), 4)}"
        f" = epsilon {_number(report.get('epsilon'), 5)} of the robust intensity range), "
        f"{100.0 * float(report.get('changed_fraction') or 0.0):.2f}% of voxels changed",
    ]
    seen = report.get("visibility")
    if seen:
        window = seen["window"]
        lines.append(
            f"  in the {window['name']} window (L{window['level']:.4g} W{window['width']:.4g}): budget "
            f"{100.0 * seen['budget_of_window']:.2f}% of the window ({255.0 * seen['budget_of_window']:.1f} grey "
            f"levels); largest change {100.0 * seen['max_change_of_window']:.2f}%, 99th percentile in the ROI "
            f"{100.0 * seen['p99_change_of_window']:.2f}%; {100.0 * seen['roi_visible_fraction']:.2f}% of ROI voxels "
            f"change by more than one grey level; PSNR {_number(seen['psnr_db'], 2, ' dB')}, "
            f"SSIM {_number(seen['ssim'], 5)}")
    reading = report.get("reading")
    if reading:
        lines.append(f"  read as {'a CT in HU' if reading['ct_in_hu'] else 'not a CT in HU'} (rule: "
                     f"{reading['rule']}): {reading['reason']}")
    if report.get("epsilon_given"):
        lines.append(f"  budget: {report['epsilon_given']}")
    windows = report.get("standard_windows") or []
    if windows:
        lines.append(f"  standard CT windows (ROI median {report['reading']['roi_median']:.4g} HU), largest change in "
                     "grey levels of an 8-bit display: " + ", ".join(
                         f"{seen['window']['name']} {255.0 * seen['max_change_of_window']:.2f}" for seen in windows))
    shift = report.get("mean_shift")
    if shift:
        lines.append(f"  mean change in the ROI {shift['native']:+.3g} native units ({shift['of_budget']:+.2f} of the "
                     f"budget, {shift['grey_levels']:+.2f} grey levels of the {shift['window']} window)")
    lines += [f"  warning: {warning}" for warning in report.get("warnings") or []]
    if report.get("threat_model"):
        lines.append(f"  evidence: {report['threat_model']['summary']}")
    series = report.get("outputs", {}).get("output") if (report.get("dicom") or {}).get("derived_series_uid") else None
    inside = [path for path in written if series and str(path).startswith(str(Path(series)) + os.sep)]
    if inside:  # a derived DICOM series: one line for its folder, not one per slice
        lines.append(f"  wrote {series} (derived DICOM series, {len(inside)} files)")
    lines += [f"  wrote {path}" for path in written if path not in inside]
    return lines
