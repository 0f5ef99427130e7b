"""`.ci/setup` on a fresh venv: the torch version it holds as a constraint is read before numpy is installed, and
importing torch there printed "Failed to initialize NumPy" (issue 37)."""

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_the_held_torch_version_is_read_silently_without_numpy(tmp_path):
    script = (REPOSITORY / ".ci" / "setup").read_text()
    command = re.search(r'^held=\$\(\.venv/bin/python -c "(.+)"\)$', script, flags=re.MULTILINE).group(1)
    # A numpy that cannot be imported stands for the fresh venv, where torch is installed and numpy not yet.
    (tmp_path / "numpy.py").write_text("raise ModuleNotFoundError(\"No module named 'numpy'\")\n")
    done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True, cwd=tmp_path,
                          env={"PYTHONPATH": str(tmp_path)}, timeout=300)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.strip() == version("torch").split("+")[0]
