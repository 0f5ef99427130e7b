"""The budget of the panel, resolved by the engine's own resolver on the selected study, in the volume's units and in
grey levels of each standard window."""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from .engine import engineModule, engineSettings
from .errors import UserFacingError

# Enough voxels for stable percentiles while keeping the panel responsive on 500-slice CTs.
_SAMPLE_VOXELS = 2_000_000

Window = Tuple[float, float]  # (level, width) in native units, as Slicer's window/level


def robustRange(array: np.ndarray) -> Tuple[float, float]:
    """The volume's robust range as the engine computes it, on a subsample of a large volume."""
    flat = array.ravel()
    if flat.size > _SAMPLE_VOXELS:
        flat = flat[:: flat.size // _SAMPLE_VOXELS + 1]
    return engineModule("method.intensity").robust_range(flat, engineSettings.PERCENTILES)


def displayWindow(volumeNode) -> Optional[Window]:
    """(level, width) of the volume's scalar display node: what the user reads with; None without one."""
    display = volumeNode.GetDisplayNode() if volumeNode is not None else None
    if display is None or not display.IsA("vtkMRMLScalarVolumeDisplayNode") or display.GetWindow() <= 0:
        return None
    return float(display.GetLevel()), float(display.GetWindow())


def windowArgument(window: Optional[Window]) -> str:
    """The engine's --window value ("level,width"), "" for none (the engine then uses the robust range)."""
    return "" if window is None else f"{window[0]:.10g},{window[1]:.10g}"


def resolveBudget(array: np.ndarray, roi: np.ndarray, steps: Optional[int] = None,
                  window: Optional[Window] = None) -> Tuple["engineSettings.ResolvedBudget", bool]:
    """(the budget `protect` resolves for this study, whether it reads the study as a CT in HU): the engine's default
    for steps None, else steps/255 of the window; UserFacingError when the engine refuses it."""
    low, high = robustRange(array)
    reading = engineModule("method.modality").read_study(array, roi)
    epsilon = None if steps is None else engineSettings.epsilon_of_steps(steps)
    try:
        settings = engineSettings.ProtectSettings(epsilon=epsilon, window=windowArgument(window) or None)
        return settings.budget_for(low, high, reading), reading.ct
    except ValueError as error:  # the engine's InputError, in the panel's words
        raise UserFacingError(f"{str(error)[:1].upper()}{str(error)[1:]}.") from None


def greyLevels(native: float) -> str:
    """A change in grey levels of each standard CT window, e.g. "4.8 grey levels of brain, 0.96 of soft-tissue"."""
    shares = [f"{native / window.width * engineSettings.GREY_LEVELS:.2g}{' grey levels' if index == 0 else ''} of "
              f"{window.name}" for index, window in enumerate(engineModule("budget").standard_windows())]
    return ", ".join(shares)


def describeBudget(budget, ct: bool, unit: str = "", default=None) -> str:
    """The budget for the panel: its amount, how the engine came to it, the standard windows' grey levels of a CT and,
    for an override, what it changes against the default."""
    units = unit or ("HU" if ct else "intensity units")
    text = f"{budget.native:.3g} {units}: {budget.given}"
    if default is not None:
        text += (f"; replaces the default {default.native:.3g} {units} ({budget.native / default.native:.2g} times "
                 "it)")
    if ct:
        text += f"; = {greyLevels(budget.native)}"
    return text
