"""The engine package (UMedProtectLib) as the module finds it, and its settings table imported in Slicer's process.

The panel takes every setting's default, bounds and command-line form from the engine's torch-free settings module
instead of copying them. Installed, the package sits beside the module on Slicer's path; in a source checkout added
with "Add module path" it is one level above the module folder, and is put on sys.path here.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Optional


def engineSearchPath() -> Optional[str]:
    """The folder that holds the UMedProtectLib package, found without importing it (torch stays unloaded)."""
    spec = importlib.util.find_spec("UMedProtectLib")
    if spec is not None and spec.submodule_search_locations:
        return str(Path(list(spec.submodule_search_locations)[0]).parent)
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "UMedProtectLib" / "__init__.py").is_file():
        return str(checkout)
    return None


def makeEngineImportable() -> None:
    """Put the engine's folder at the end of sys.path when Python does not find the package by itself."""
    folder = engineSearchPath()
    if folder is not None and importlib.util.find_spec("UMedProtectLib") is None:
        sys.path.append(folder)


makeEngineImportable()

import UMedProtectLib.settings as engineSettings  # noqa: E402  (importable only now)


def engineModule(name: str):
    """A torch-free engine module imported on first use (e.g. "intensity" or "reports", which need numpy)."""
    return importlib.import_module(f"UMedProtectLib.{name}")


__all__ = ["engineModule", "engineSearchPath", "engineSettings", "makeEngineImportable"]
