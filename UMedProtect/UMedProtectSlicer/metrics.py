"""The metrics table of a protection run, as a vtkMRMLTableNode the panel shows."""

from __future__ import annotations

from typing import Any, Mapping

# (report key, row label, format, scale). Native units are the volume's intensity units (e.g. HU).
METRIC_ROWS = (
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


def metricRows(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, formatted value) for every metric the report holds, in a fixed order."""
    return [(label, formatMetric(report.get(key), pattern, scale))
            for key, label, pattern, scale in METRIC_ROWS if key in report]


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
