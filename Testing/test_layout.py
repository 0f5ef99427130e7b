"""docs/architecture.md's layout table names every file of the engine and the Slicer helpers: it matches the tree.

Each row of the table starts with a folder (a path from the repository root ending in '/'); the other names in its
first column are that folder's files and subfolders.
"""

import re
from pathlib import Path
from typing import List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("UMedProtectLib", "UMedProtect/UMedProtectSlicer")


def layout_rows(text: str) -> List[Tuple[str, List[str]]]:
    """(folder, names in it) for each row of the "## Layout" section's table."""
    section = text[text.index("## Layout"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    rows = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names = re.findall(r"`([^`]+)`", line.split("|")[1])
            rows.append((names[0], names[1:]))
    return rows


def named_paths(rows: List[Tuple[str, List[str]]]) -> Set[str]:
    """Every path the table names, from the repository root, without a trailing '/'."""
    named = set()
    for folder, names in rows:
        assert folder.endswith("/"), f"a row starts with {folder!r}, not a folder"
        named.add(folder.rstrip("/"))
        named |= {folder + name.rstrip("/") for name in names}
    return named


def engine_paths(root: Path) -> List[str]:
    """The modules (but __init__.py) and the subfolders of the engine and the Slicer helpers."""
    paths = []
    for top in CHECKED:
        for path in sorted((root / top).rglob("*")):
            if "__pycache__" in path.parts:
                continue
            if (path.suffix == ".py" and path.name != "__init__.py") or (
                    path.is_dir() and not path.name.startswith(("_", "."))):
                paths.append(path.relative_to(root).as_posix())
    return paths


def architecture() -> str:
    return (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_the_layout_table_names_every_engine_and_slicer_helper_file():
    named = named_paths(layout_rows(architecture()))
    missing = [path for path in engine_paths(ROOT) if path not in named]
    assert not missing, f"docs/architecture.md's layout table misses {missing}"


def test_the_layout_table_names_nothing_that_is_gone():
    gone = sorted(path for path in named_paths(layout_rows(architecture())) if not (ROOT / path).exists())
    assert gone == []


def test_a_module_left_out_or_a_name_that_is_gone_is_seen(tmp_path):
    (tmp_path / "UMedProtectLib" / "method").mkdir(parents=True)
    (tmp_path / "UMedProtect" / "UMedProtectSlicer").mkdir(parents=True)
    for name in ("UMedProtectLib/settings.py", "UMedProtectLib/method/protection.py", "UMedProtectLib/method/new.py"):
        (tmp_path / name).write_text("")
    rows = layout_rows("## Layout\n\n| where | what |\n|---|---|\n"
                       "| `UMedProtectLib/`: `settings.py`, `method/` | top |\n"
                       "| `UMedProtectLib/method/`: `protection.py`, `gone.py` | method |\n\n## Next\n| `x/` | y |\n")
    named = named_paths(rows)
    assert [path for path in engine_paths(tmp_path) if path not in named] == ["UMedProtectLib/method/new.py"]
    assert "UMedProtectLib/method/gone.py" in named and "x" not in named
