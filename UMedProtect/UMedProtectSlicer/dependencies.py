"""Which Python packages the engine needs and which of them are missing (checked without importing them)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from dataclasses import dataclass

# import name -> pip requirement; the engine's pyproject dependencies (a test checks this) but highdicom: it reads DICOM
# SEG files, which the panel never gives the engine (Slicer's DICOM module loads them; the engine gets NRRD), and it
# needs pydicom 3, while Slicer bundles pydicom 2.4.
REQUIREMENTS = {
    "torch": "torch>=2.0,<3",
    "numpy": "numpy>=1.22",
    "SimpleITK": "SimpleITK>=2.2",
    "skimage": "scikit-image>=0.20",
    "scipy": "scipy>=1.8",
    "slicerio": "slicerio>=1.0",
    "PIL": "pillow>=9",
    "distributed": "distributed>=2024.1",  # protect-dataset's Dask scale-out: an engine dependency like the others
    "pydicom": "pydicom>=2.4,<4",  # the derived DICOM series out (Slicer's own DICOM module uses pydicom too)
}
# What 3D Slicer ships in its own Python (its SuperBuild: python-numpy, python-SimpleITK, and pydicom 2.4.3 and Pillow
# in python-dicom-requirements): never installed over, since Slicer's own modules (the DICOM browser) were built and
# tested with its versions. One out of range is refused in words instead (planInstall).
SLICER_BUNDLED = ("numpy", "SimpleITK", "pydicom", "PIL")


@dataclass(frozen=True)
class MissingPackage:
    """A requirement that is absent or too old."""

    importName: str
    requirement: str
    installed: str | None  # None when absent


def _versionTuple(text: str) -> tuple:
    """Leading numeric part of a version ("2.3.1+cu121" -> (2, 3, 1)) for simple comparisons."""
    numbers = re.findall(r"\d+", text.split("+")[0])[:3]
    return tuple(int(n) for n in numbers)


def satisfies(version: str, requirement: str) -> bool:
    """Whether a version meets the >= / < bounds of a requirement such as "torch>=2.0,<3"."""
    current = _versionTuple(version)
    for operator, bound in re.findall(r"(>=|<=|==|<|>)\s*([0-9][0-9A-Za-z.]*)", requirement):
        limit = _versionTuple(bound)
        width = max(len(current), len(limit))
        a, b = current + (0,) * (width - len(current)), limit + (0,) * (width - len(limit))
        ok = {">=": a >= b, "<=": a <= b, "==": a == b, "<": a < b, ">": a > b}[operator]
        if not ok:
            return False
    return True


def distributionName(requirement: str) -> str:
    """The distribution part of a requirement ("scikit-image>=0.20" -> "scikit-image")."""
    return re.split(r"[<>=!~\s\[]", requirement, maxsplit=1)[0]


def missingPackages(requirements: dict = REQUIREMENTS) -> list[MissingPackage]:
    """Requirements that are not importable or whose installed version is out of range."""
    # Packages installed by pip since this Python started are invisible to find_spec until the caches are reset.
    importlib.invalidate_caches()
    missing = []
    for importName, requirement in requirements.items():
        if importlib.util.find_spec(importName) is None:
            missing.append(MissingPackage(importName, requirement, None))
            continue
        try:
            version = importlib.metadata.version(distributionName(requirement))
        except importlib.metadata.PackageNotFoundError:
            continue  # importable but not pip-registered (bundled with Slicer): accept it
        if not satisfies(version, requirement):
            missing.append(MissingPackage(importName, requirement, version))
    return missing


def describeMissing(missing: list[MissingPackage]) -> str:
    """One line for the panel, e.g. "torch>=2.0,<3 (not installed), scipy>=1.8 (1.7.3 installed)"."""
    return ", ".join(f"{m.requirement} ({'not installed' if m.installed is None else m.installed + ' installed'})"
                     for m in missing)
