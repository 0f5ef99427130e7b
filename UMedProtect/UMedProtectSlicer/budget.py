"""The budget in the volume's own units (e.g. HU) and as a share of the window the volume is displayed with."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .engine import engineModule, engineSettings

# Enough voxels for stable percentiles while keeping the panel responsive on 500-slice CTs.
_SAMPLE_VOXELS = 2_000_000

Window = Tuple[float, float]  # (level, width) in native units, as Slicer's window/level


def intensitySpan(array: np.ndarray) -> float:
    """The width of the volume's robust range as the engine computes it, on a subsample of a large volume."""
    flat = array.ravel()
    if flat.size > _SAMPLE_VOXELS:
        flat = flat[:: flat.size // _SAMPLE_VOXELS + 1]
    low, high = engineModule("method.intensity").robust_range(flat, engineSettings.PERCENTILES)
    return max(high - low, 0.0)


def displayWindow(volumeNode) -> Optional[Window]:
    """(level, width) of the volume's scalar display node: what the user reads with; None without one."""
    display = volumeNode.GetDisplayNode() if volumeNode is not None else None
    if display is None or not display.IsA("vtkMRMLScalarVolumeDisplayNode") or display.GetWindow() <= 0:
        return None
    return float(display.GetLevel()), float(display.GetWindow())


def windowArgument(window: Optional[Window]) -> str:
    """The engine's --window value ("level,width"), "" for none (the engine then uses the robust range)."""
    return "" if window is None else f"{window[0]:.10g},{window[1]:.10g}"


def nativeBudget(steps: int, span: float) -> float:
    """steps/255 of a span (a window's width or the intensity range): the largest change, in native units."""
    return engineSettings.epsilon_of_steps(steps) * float(span)


def describeBudget(steps: int, span: float, unit: str = "", window: Optional[Window] = None) -> str:
    """The budget for the panel: in native units and, with a window, as a share of it ("about 6.27 HU, ...")."""
    if span <= 0:
        return "none: the volume is constant, there is nothing to protect"
    units = unit or "intensity units"
    if window is None:
        return f"about {nativeBudget(steps, span):.4g} {units}"
    native = nativeBudget(steps, window[1])
    text = f"about {native:.4g} {units}, {100.0 * engineSettings.epsilon_of_steps(steps):.2g}% of the display window " \
           f"(L{window[0]:.4g} W{window[1]:.4g})"
    if native > span:
        text += ": more than the volume's intensity range, choose a smaller budget"
    return text
