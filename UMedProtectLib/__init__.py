"""UMedProtectLib: the UMed protection engine (no Slicer, no Qt): protect studies against unauthorised training.

The names below are imported on first use (PEP 562), so that `import UMedProtectLib.settings` stays free of torch:
the Slicer panel imports the settings to build the engine's command line without loading the engine.
"""

import importlib
from typing import Any, List

__version__ = "0.1.0"

# Public name -> the submodule that defines it.
_EXPORTS = {
    "Cancelled": "errors", "InputError": "errors", "Profile": "method.profile", "Progress": "progress",
    "ProtectSettings": "settings", "ProtectionResult": "method.protection", "fit_profile": "method.protection",
    "load_profile": "method.profile",
    "protect": "method.protection", "save_profile": "method.profile",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    """Import a public name's submodule when the name is first used."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    """The public names, imported or not."""
    return sorted({*globals(), *_EXPORTS})
