"""The engine's DICOM path on the pydicom that 3D Slicer bundles (2.4.3, kept apart by .ci/setup in
.venv/slicer-pydicom): a derived series, its re-referenced RTSTRUCT and a DICOMDIR written by a process that imports
that pydicom pass dciodvfy and read back; a SEG, which needs highdicom and pydicom 3, is refused in one line; the
panel's dependency check takes Slicer's pydicom as it is (issue 36)."""

import os
import subprocess
import sys
from importlib.metadata import PathDistribution
from pathlib import Path

import pytest

from dicom_testing import (assert_a_file_set_of, assert_labels_the_derived_series, ct_study, new_study,
                           write_ct_series, write_rtstruct, write_seg)

REPOSITORY = Path(__file__).resolve().parents[2]
SLICER_PYDICOM = Path(sys.prefix) / "slicer-pydicom"
# 3D Slicer's SuperBuild/External_python-dicom-requirements.cmake pins pydicom==2.4.3.
BUNDLED = "2.4.3"


@pytest.fixture
def on_slicers_pydicom():
    """Runs `python ARGS` with Slicer's pydicom first on the path (the engine and the panel's helpers after it)."""
    if not SLICER_PYDICOM.is_dir():
        pytest.skip(f"Slicer's pydicom is not installed at {SLICER_PYDICOM}: run .ci/setup")
    found = [PathDistribution(p).version for p in SLICER_PYDICOM.glob("pydicom-*.dist-info")]
    assert found == [BUNDLED], f"{SLICER_PYDICOM} holds pydicom {found}, not the {BUNDLED} that Slicer bundles"
    path = os.pathsep.join([str(SLICER_PYDICOM), str(REPOSITORY), str(REPOSITORY / "UMedProtect")])

    def run(*args):
        return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ, PYTHONPATH=path))

    seen = run("-c", "import importlib.metadata as m, pydicom; print(m.version('pydicom'), pydicom.__file__)")
    assert seen.stdout.startswith(f"{BUNDLED} {SLICER_PYDICOM}"), seen.stdout + seen.stderr
    return run


def test_series_rtstruct_and_dicomdir_are_written_on_slicers_pydicom_and_a_seg_is_refused(tmp_path,
                                                                                          on_slicers_pydicom):
    data = tmp_path / "data"
    hu, masks = ct_study()
    uids = new_study()
    files = write_ct_series(data / "case01", hu, uids)
    write_rtstruct(data / "case01_rtstruct.dcm", files, masks, uids)
    write_seg(tmp_path / "seg.dcm", files, masks)
    out = tmp_path / "out"
    done = on_slicers_pydicom("-m", "UMedProtectLib", "protect-dataset", "--dataset", data, "--output-dir", out,
                              "--workers", "1", "--dicomdir", "--iterations", "0", "--progress", "none",
                              "--epsilon", "25HU")
    assert done.returncode == 0 and "1 protected now" in done.stdout, done.stdout + done.stderr
    assert_labels_the_derived_series(data / "case01", data / "case01_rtstruct.dcm", out / "case01",
                                     out / "case01_rtstruct.dcm")
    assert_a_file_set_of(out / "dicomdir" / "DICOMDIR", [out / "case01"], [out / "case01_rtstruct.dcm"])
    refused = on_slicers_pydicom("-m", "UMedProtectLib", "protect", "--image", data / "case01", "--label",
                                 tmp_path / "seg.dcm", "--output", tmp_path / "seg_out", "--iterations", "0",
                                 "--progress", "none")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "needs highdicom with pydicom 3" in refused.stderr and not (tmp_path / "seg_out").exists()


def test_the_panels_dependency_check_takes_slicers_pydicom_as_it_is(on_slicers_pydicom):
    checked = on_slicers_pydicom("-c", "from UMedProtectSlicer.dependencies import missingPackages; "
                                 "print([m.importName for m in missingPackages()])")
    assert checked.returncode == 0 and checked.stdout.strip() == "[]", checked.stdout + checked.stderr
