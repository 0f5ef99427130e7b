"""Version strings for reports and sidecars, found without importing heavy packages."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import re
from pathlib import Path
from typing import Optional


def packageVersion(distribution: str) -> Optional[str]:
    """Installed version of a distribution, or None (never imports it)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def engineVersion() -> Optional[str]:
    """UMedProtectLib's __version__, read from its source so that torch is not imported into Slicer."""
    spec = importlib.util.find_spec("UMedProtectLib")
    if spec is None or spec.origin is None:
        return None
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', Path(spec.origin).read_text(encoding="utf-8"), re.M)
    return match.group(1) if match else None


def collectVersions(extra: Optional[dict] = None) -> dict:
    """Versions of the engine, Python and the numeric packages, plus the caller's (e.g. Slicer's)."""
    versions = {
        "UMedProtectLib": engineVersion(),
        "python": platform.python_version(),
        "torch": packageVersion("torch"),
        "numpy": packageVersion("numpy"),
        "SimpleITK": packageVersion("SimpleITK"),
        "scikit-image": packageVersion("scikit-image"),
        "scipy": packageVersion("scipy"),
    }
    versions.update(extra or {})
    return versions
