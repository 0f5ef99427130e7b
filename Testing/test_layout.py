"""The README's layout table names every file of the engine and the Slicer helpers, so that it matches the tree."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def layout_table() -> str:
    """The README's "Layout" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Layout"):text.index("## Engine API")]


def test_the_layout_table_names_every_engine_and_slicer_helper_file():
    named = set(re.findall(r"`([^`]+)`", layout_table()))
    named |= {Path(name).name for name in named}
    files = [p for folder in ("UMedProtectLib", "UMedProtect/UMedProtectSlicer") for p in (ROOT / folder).iterdir()
             if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and not p.name.startswith(("_", ".")))]
    missing = sorted(p.name + ("/" if p.is_dir() else "") for p in files
                     if p.name not in named and p.name + "/" not in named)
    assert not missing, f"README layout table misses {missing}"


def test_the_layout_table_names_nothing_that_is_gone():
    names = [n for n in re.findall(r"`([^`/ ]+\.py)`", layout_table())]
    found = {p.name for p in ROOT.rglob("*.py") if ".venv" not in p.parts}
    assert [n for n in names if n not in found] == []
