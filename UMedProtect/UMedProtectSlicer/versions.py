"""Version strings for reports and sidecars, found without importing heavy packages."""

from __future__ import annotations

import importlib.metadata
import platform
import re
from pathlib import Path
from typing import Optional

from .runner import engineSearchPath


def packageVersion(distribution: str) -> Optional[str]:
    """Installed version of a distribution, or None (never imports it)."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def engineVersion() -> Optional[str]:
    """UMedProtectLib's __version__, read from its source so that torch is not imported into Slicer."""
    folder = engineSearchPath()
    if folder is None:
        return None
    source = Path(folder) / "UMedProtectLib" / "__init__.py"
    match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', source.read_text(encoding="utf-8"), re.M)
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
