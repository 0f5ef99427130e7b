"""The Python version the project states is one that the torch it installs supports."""

import re
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
# torch 2.13 ships wheels for CPython 3.10 and newer only.
TORCH_MINIMUM_PYTHON = {"2.13": (3, 10)}


def test_stated_python_matches_the_pinned_torch():
    pinned = re.search(r'"torch==(\d+\.\d+)\.\d+"', (REPOSITORY / ".ci" / "setup").read_text()).group(1)
    minimum = TORCH_MINIMUM_PYTHON[pinned]
    required = re.search(r'requires-python = ">=(\d+)\.(\d+)"', (REPOSITORY / "pyproject.toml").read_text())
    assert tuple(map(int, required.groups())) == minimum
    assert f"Python {minimum[0]}.{minimum[1]}+" in (REPOSITORY / "README.md").read_text()
    assert sys.version_info[:2] >= minimum
