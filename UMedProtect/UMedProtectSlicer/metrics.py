"""The metrics table of a protection run, as a vtkMRMLTableNode the panel shows."""

from __future__ import annotations

from typing import Any, Mapping

from .engine import engineModule

# (report key, row label, format, scale); "a.b" is key b of the report's block a. Native units are the volume's
# intensity units (e.g. HU); "window" is the reading window of the report's visibility block. In the order a reader
# asks: is the change visible (in the reading window, then in each standard window, its texture and its mean, with the
# warnings), then what it does (the protection evidence), then its size overall and the run's facts.
VISIBILITY_ROWS = (
    ("epsilon_given", "Budget", "{}", None),
    ("visibility.budget_of_window", "Budget, share of the window (%)", "{:.2f}", 100),
    ("visibility.psnr_db", "PSNR in the window (dB)", "{:.2f}", 1),
    ("visibility.ssim", "SSIM in the window", "{:.4f}", 1),
    ("visibility.max_change_of_window", "Largest change, share of the window (%)", "{:.2f}", 100),
    ("visibility.p99_change_of_window", "99th percentile change in the region, share of the window (%)", "{:.2f}",
     100),
    ("visibility.roi_visible_fraction", "Region voxels changed by more than one grey level (%)", "{:.2f}", 100),
)
TEXTURE_ROWS = (
    ("texture.roi_texture_ratio", "Local noise in the region, after / before", "x{:.2f}", 1),
    ("texture.band_texture_ratio", "Local noise in the band around the edge, after / before", "x{:.2f}", 1),
)
SIZE_ROWS = (
    ("psnr_db", "PSNR, whole volume (dB)", "{:.2f}", 1),
    ("psnr_roi_db", "PSNR, region of interest (dB)", "{:.2f}", 1),
    ("ssim", "SSIM, whole volume", "{:.4f}", 1),
    ("ssim_roi_slices", "SSIM, slices with the region", "{:.4f}", 1),
    ("linf_native", "Largest change (native units)", "{:.4g}", 1),
    ("epsilon_native", "Budget (native units)", "{:.4g}", 1),
    ("changed_fraction", "Changed voxels (%)", "{:.3f}", 100),
    ("roi_voxels", "Region voxels", "{:.0f}", 1),
    ("runtime_s", "Run time (s)", "{:.1f}", 1),
    ("device", "Device", "{}", None),
    ("mode", "Mode", "{}", None),
)
METRIC_ROWS = VISIBILITY_ROWS + TEXTURE_ROWS + SIZE_ROWS


def formatMetric(value: Any, pattern: str, scale: float | None) -> str:
    """Format a report value for the table; missing or odd values show as text rather than failing."""
    if value is None:
        return "n/a"
    try:
        return pattern.format(float(value) * scale if scale is not None else value)
    except (TypeError, ValueError):
        return str(value)


_ABSENT = object()


def reportValue(report: Mapping[str, Any], key: str) -> Any:
    """The value at a dotted key ("visibility.psnr_db"); _ABSENT when the report does not hold it."""
    value: Any = report
    for part in key.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def describeWindow(window: Mapping[str, Any]) -> str:
    """E.g. "soft-tissue (level 40, width 400)"."""
    return f"{window.get('name', '?')} (level {float(window['level']):.4g}, width {float(window['width']):.4g})"


def _rows(report: Mapping[str, Any], rows) -> list[tuple[str, str]]:
    """(label, formatted value) of the rows whose key the report holds."""
    found = ((label, reportValue(report, key), pattern, scale) for key, label, pattern, scale in rows)
    return [(label, formatMetric(value, pattern, scale)) for label, value, pattern, scale in found
            if value is not _ABSENT]


def standardWindowRows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A CT's largest change in grey levels of each standard window (the command line's per-window figures)."""
    return [(f"Largest change in the {seen['window']['name']} window (L{float(seen['window']['level']):.4g} "
             f"W{float(seen['window']['width']):.4g}), grey levels",
             formatMetric(seen.get("max_change_of_window"), "{:.2f}", engineModule("budget").GREY_LEVELS))
            for seen in report.get("standard_windows") or [] if isinstance(seen, Mapping) and "window" in seen]


def meanShiftRows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The mean change inside the region, in native units, of the budget and in grey levels of the reading window."""
    shift = report.get("mean_shift")
    if not isinstance(shift, Mapping):
        return []
    unit = "HU" if (report.get("reading") or {}).get("ct_in_hu") else "native units"
    return [("Mean change in the region", f"{float(shift['native']):+.3g} {unit} ({float(shift['of_budget']):+.2f} "
             f"of the budget, {float(shift['grey_levels']):+.2f} grey levels of the {shift['window']} window)")]


def metricRows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) of every figure, warning and the evidence the report holds, in the order of METRIC_ROWS' note."""
    window = reportValue(report, "visibility.window")
    rows = [("Reading window", describeWindow(window))] if isinstance(window, Mapping) else []
    rows += (_rows(report, VISIBILITY_ROWS) + standardWindowRows(report) + _rows(report, TEXTURE_ROWS)
             + meanShiftRows(report))
    rows += [("Warning", str(warning)) for warning in report.get("warnings", []) or []]
    evidence = (report.get("threat_model") or {}).get("summary")
    if evidence:  # whether the design was measured to protect, so the user never reads PSNR as protection
        rows.append(("Protection evidence", str(evidence)))
    return rows + _rows(report, SIZE_ROWS)


def sidecarMetrics(report: Mapping[str, Any]) -> dict:
    """The table's figures by report key ("visibility.psnr_db"), unformatted, for the exported sidecar."""
    return {key: value for key, *_ in METRIC_ROWS if (value := reportValue(report, key)) is not _ABSENT}


def createMetricsTable(scene, report: Mapping[str, Any], name: str):
    """A new two-column table node (Metric, Value) filled from the engine's report."""
    table = scene.AddNewNodeByClass("vtkMRMLTableNode", name)
    wasModifying = table.StartModify()
    metricColumn = table.AddColumn()
    metricColumn.SetName("Metric")
    valueColumn = table.AddColumn()
    valueColumn.SetName("Value")
    for label, value in metricRows(report):
        row = table.AddEmptyRow()
        table.SetCellText(row, 0, label)
        table.SetCellText(row, 1, value)
    table.SetUseColumnTitleAsColumnHeader(True)
    table.SetLocked(True)
    table.EndModify(wasModifying)
    return table
