"""Installing the Python packages the engine lacks: torch through the PyTorch extension when present, else pip.

Only ensureDependencies() needs the Slicer application (its dialogs and pip_install), imported when it runs;
the plan of what to install is plain data and is tested on slicer-core.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Optional

from .dependencies import SLICER_BUNDLED, MissingPackage, describeMissing, distributionName, missingPackages
from .errors import UserFacingError


@dataclass(frozen=True)
class InstallPlan:
    """What to install and how: torch through the PyTorch extension (its version bounds), the rest with pip."""

    torchVersionRequirement: Optional[str] = None  # e.g. ">=2.0,<3"; None when torch is not installed that way
    pipPackages: list[MissingPackage] = field(default_factory=list)

    def pipRequirements(self) -> list[str]:
        """The requirement strings given to pip, one package each."""
        return [package.requirement for package in self.pipPackages]


def planInstall(missing: list[MissingPackage], pytorchExtension: bool) -> InstallPlan:
    """Torch goes through the PyTorch extension (which picks the CUDA build) when it is there, else with the rest;
    UserFacingError when that would replace a package Slicer ships (SLICER_BUNDLED)."""
    bundled = [m for m in missing if m.importName in SLICER_BUNDLED and m.installed is not None]
    if bundled:
        raise UserFacingError(f"UMed Protect needs {describeMissing(bundled)}, which 3D Slicer ships itself; it does "
                              "not replace them, since Slicer's own modules depend on them. Use a 3D Slicer release "
                              "that bundles these versions.")
    torch = next((m for m in missing if m.importName == "torch"), None)
    if torch is None or not pytorchExtension:
        return InstallPlan(None, list(missing))
    bounds = torch.requirement[len(distributionName(torch.requirement)):]
    return InstallPlan(bounds, [m for m in missing if m is not torch])


def ensureDependencies(askConfirmation: bool = True, log: Optional[Callable[[str], None]] = None) -> bool:
    """Install what the engine lacks, asking first when askConfirmation; True when something was installed."""
    missing = missingPackages()
    if not missing:
        return False
    log = log or logging.info
    try:
        import PyTorchUtils
    except ImportError:
        PyTorchUtils = None
    plan = planInstall(missing, pytorchExtension=PyTorchUtils is not None)
    if plan.torchVersionRequirement is not None:
        log("Installing PyTorch through the PyTorch extension (it may take several minutes)...")
        torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=askConfirmation,
                                                               torchVersionRequirement=plan.torchVersionRequirement)
        if torch is None:
            raise UserFacingError("PyTorch is needed to protect a volume; installation was declined.")
    if plan.pipPackages:
        import slicer.util

        text = describeMissing(plan.pipPackages)
        if askConfirmation and not slicer.util.confirmOkCancelDisplay(
                f"UMed Protect needs these Python packages: {text}. Download and install them now "
                "(this may take several minutes)?", windowTitle="UMed Protect"):
            raise UserFacingError(f"These Python packages are needed and were not installed: {text}.")
        for requirement in plan.pipRequirements():
            log(f"Installing {requirement}...")
            slicer.util.pip_install(requirement)
    still = missingPackages()
    if still:
        raise UserFacingError(f"Some packages are still missing after installation: {describeMissing(still)}; "
                              "restart Slicer and try again.")
    log("All Python packages the engine needs are installed.")
    return True
