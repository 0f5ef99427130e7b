"""The research probes (research/) use only the engine's public names, and every name they import exists.

The probes run for minutes to hours and are not run here; what breaks them silently is the engine moving under
them (a renamed module, a private helper whose signature changed), which this catches from their source.
"""

import ast
import importlib
import importlib.util
from pathlib import Path

import pytest

RESEARCH = Path(__file__).resolve().parents[1] / "research"


def engine_imports(path: Path):
    """(module, name) for every `from UMedProtectLib... import name` in a script, at any depth."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("UMedProtectLib"):
            yield from ((node.module, alias.name) for alias in node.names)


@pytest.mark.parametrize("script", sorted(RESEARCH.glob("*.py")), ids=lambda path: path.name)
def test_a_probe_imports_public_engine_names_that_exist(script):
    imported = list(engine_imports(script))
    assert imported, f"{script.name} imports nothing of the engine"
    for module, name in imported:
        assert not name.startswith("_"), f"{script.name} imports the private {module}.{name}"
        found = hasattr(importlib.import_module(module), name) or importlib.util.find_spec(f"{module}.{name}")
        assert found, f"{script.name}: {module} has no {name}"
