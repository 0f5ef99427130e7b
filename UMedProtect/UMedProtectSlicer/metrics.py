"""The metrics table of a protection run, as a vtkMRMLTableNode the panel shows."""

from __future__ import annotations

from typing import Any, Mapping

# (report key, row label, format, scale); "a.b" is key b of the report's block a. Native units are the volume's
# intensity units (e.g. HU); "window" is the reading window of the report's visibility block.
METRIC_ROWS = (
    ("visibility.budget_of_window", "Budget, share of the window (%)", "{:.2f}", 100),
    ("visibility.psnr_db", "PSNR in the window (dB)", "{:.2f}", 1),
    ("visibility.ssim", "SSIM in the window", "{:.4f}", 1),
    ("visibility.max_change_of_window", "Largest change, share of the window (%)", "{:.2f}", 100),
    ("visibility.p99_change_of_window", "99th percentile change in the region, share of the window (%)", "{:.2f}",
     100),
    ("visibility.roi_visible_fraction", "Region voxels changed by more than one grey level (%)", "{:.2f}", 100),
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


def metricRows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) for every metric the report holds, in a fixed order, the reading window first."""
    window = reportValue(report, "visibility.window")
    rows = [("Reading window", describeWindow(window))] if isinstance(window, Mapping) else []
    for key, label, pattern, scale in METRIC_ROWS:
        value = reportValue(report, key)
        if value is not _ABSENT:
            rows.append((label, formatMetric(value, pattern, scale)))
    return rows


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
    for warning in report.get("warnings", []) or []:
        row = table.AddEmptyRow()
        table.SetCellText(row, 0, "Warning")
        table.SetCellText(row, 1, str(warning))
    evidence = (report.get("threat_model") or {}).get("summary")
    if evidence:  # whether the design was measured to protect, so the user never reads PSNR as protection
        row = table.AddEmptyRow()
        table.SetCellText(row, 0, "Protection evidence")
        table.SetCellText(row, 1, str(evidence))
    table.SetUseColumnTitleAsColumnHeader(True)
    table.SetLocked(True)
    table.EndModify(wasModifying)
    return table
