"""The settings table: torch-free import, validation from the table, and the command line generated from it."""

import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def test_settings_and_designs_import_without_torch():
    """The Slicer panel imports the settings in Slicer's own process: that must not load torch (or numpy)."""
    code = ("import sys; import UMedProtectLib.settings, UMedProtectLib.budget, UMedProtectLib.designs; "
            "from UMedProtectLib.settings import ProtectSettings; ProtectSettings().to_dict(); "
            "print(sorted(m for m in ('torch', 'numpy', 'SimpleITK') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPOSITORY, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    engine = subprocess.run([sys.executable, "-c", "import sys, UMedProtectLib; UMedProtectLib.protect; "
                             "print('torch' in sys.modules)"], cwd=REPOSITORY, capture_output=True, text=True,
                            check=True)
    assert engine.stdout.strip() == "True"  # the engine's names are still there, imported on first use
