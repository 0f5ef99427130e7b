"""The study pipeline called directly, without the command line: the same files as `protect`; and the command line
is the only package that imports cli/'s commands."""

import json

import numpy as np
import SimpleITK as sitk

from test_import_graph import ROOT, import_graph
from UMedProtectLib.pipeline.study import ProtectJob, ProtectOutputs, protect_study
from UMedProtectLib.settings import ProtectSettings


def test_protect_study_writes_what_it_reports_and_leaves_the_inputs(tmp_path, synthetic_files):
    image_path, label_path = synthetic_files(".nrrd")
    before = image_path.read_bytes(), label_path.read_bytes()
    outputs = ProtectOutputs(tmp_path / "out.nrrd", tmp_path / "diff.nrrd", tmp_path / "report.json")
    report, written = protect_study(ProtectJob(image_path, label_path, outputs,
                                               ProtectSettings().with_changes(iterations=0)))
    assert sorted(written) == sorted([outputs.output, outputs.difference, outputs.report])
    assert (image_path.read_bytes(), label_path.read_bytes()) == before
    protected = sitk.GetArrayFromImage(sitk.ReadImage(str(outputs.output)))
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path)))
    difference = sitk.GetArrayFromImage(sitk.ReadImage(str(outputs.difference)))
    assert np.array_equal(protected.astype(np.float64) - original, difference)
    assert json.loads(outputs.report.read_text())["epsilon_native"] == report["epsilon_native"]


def test_no_engine_package_imports_the_command_lines_commands():
    graph = import_graph(ROOT)
    # cli/version.py is the program's name and --version, which `evaluate` shares.
    commands = {name for name in graph if name.startswith("UMedProtectLib.cli.") and not name.endswith(".version")}
    outside = {module: sorted(graph[module] & commands) for module in graph
               if not module.startswith("UMedProtectLib.cli") and module != "UMedProtectLib.__main__"}
    assert {module: found for module, found in outside.items() if found} == {}
