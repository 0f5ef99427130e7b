"""The background-process protocol: command line, JSON progress lines, exit codes, cancel, with the real CLI."""

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import slicer_testing  # noqa: F401  (puts UMedProtect/ on sys.path)

from UMedProtectLib.cli.main import build_parser
from UMedProtectLib.settings import settings_from
from UMedProtectLib.settings import ProtectSettings
from UMedProtectSlicer.runner import (EXIT_BAD_INPUT, EngineProcess, ProgressEvent, ProtectCommand, _LogFollower,
                                      engineEnvironment, engineSearchPath, parseProgressLine, pythonExecutable)

needs_cli = pytest.mark.skipif(importlib.util.find_spec("UMedProtectLib.cli") is None,
                               reason="the CLI is not there yet")


def command(tmp_path, image, label, profile=None, **settings):
    return ProtectCommand(image=Path(image), label=Path(label), output=tmp_path / "protected.nrrd",
                          difference=tmp_path / "difference.nrrd", report=tmp_path / "report.json",
                          settings=ProtectSettings(**settings), profile=profile)


def test_the_real_parser_reads_the_arguments_back(tmp_path):
    settings = dict(epsilon=8 / 255, window="-600,1500", band_width=2, labels=(1, 3), preset="fast", device="cuda:1",
                    seed=7, iterations=5)
    # Parsed as given, without the CLI's joining of signed values: the command writes them as one token already.
    arguments = command(tmp_path, "a.nrrd", "b.nrrd", profile=Path("p.pt"), **settings).arguments()
    args = build_parser().parse_args(arguments)
    assert args.command == "protect" and args.image == "a.nrrd" and args.label == "b.nrrd"
    assert Path(args.output) == tmp_path / "protected.nrrd" and Path(args.difference) == tmp_path / "difference.nrrd"
    assert Path(args.report) == tmp_path / "report.json" and args.profile == "p.pt"
    assert args.progress == "json" and args.overwrite
    assert settings_from(args) == ProtectSettings(**settings)
    plain = build_parser().parse_args(command(tmp_path, "a.nrrd", "b.nrrd").arguments())
    assert plain.labels is None and plain.profile is None and plain.iterations is None and plain.window is None
    assert settings_from(plain) == ProtectSettings()


def test_progress_line_parsing():
    assert parseProgressLine('{"stage": "fit", "fraction": 0.5, "message": "iteration 3/60"}') == \
        ProgressEvent("fit", 0.5, "iteration 3/60")
    assert parseProgressLine('  {"stage": "done", "fraction": 1.7}\r\n') == ProgressEvent("done", 1.0, "")
    for line in ("protected 20 ROI slices in 4.9 s", "{not json", '{"stage": "x"}', '[1, 2]',
                 '{"stage": "x", "fraction": "half"}', ""):
        assert parseProgressLine(line) is None


def test_engine_is_found_in_a_source_checkout_without_installing_it(tmp_path):
    """With "Add module path" on a checkout, UMedProtectLib is not on sys.path: it is found beside the module."""
    import subprocess

    module_dir = Path(slicer_testing.MODULE_DIR)
    # -S: no site-packages, so the editable install of this environment is invisible, as in a bare Slicer.
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import importlib.util; "
            "assert importlib.util.find_spec('UMedProtectLib') is None; "
            "from UMedProtectSlicer.runner import engineSearchPath; print(engineSearchPath())")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(module_dir)], cwd=tmp_path, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == str(module_dir.parent)


def test_log_follower_returns_only_complete_lines(tmp_path):
    path = tmp_path / "out.log"
    with open(path, "wb", buffering=0) as writer:
        follower = _LogFollower(path)
        assert follower.newLines() == []
        writer.write(b'{"stage": "fit", "frac')
        assert follower.newLines() == []
        writer.write('tion": 0.5}\r\nh\xc3'.encode("latin-1"))  # a UTF-8 character split across writes
        assert follower.newLines() == ['{"stage": "fit", "fraction": 0.5}']
        writer.write(b"\xa9 wrote\nunterminated")
        assert follower.newLines() == ["h\u00e9 wrote"]
        assert follower.newLines(final=True) == ["unterminated"]
    follower.close()


def test_environment_makes_the_engine_importable_without_importing_it():
    folder = engineSearchPath()
    assert folder is not None and (Path(folder) / "UMedProtectLib" / "__init__.py").is_file()
    env = engineEnvironment({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(":")[0] == folder and "/elsewhere" in env["PYTHONPATH"]
    assert env["PYTHONUNBUFFERED"] == "1"
    assert pythonExecutable()


@needs_cli
def test_background_run_reports_progress_and_writes_results(tmp_path, sample_files):
    image, label = sample_files
    process = EngineProcess(command(tmp_path, image, label, device="cpu", iterations=1))
    process.start()
    started = time.monotonic()
    assert process.poll() is not None  # returns at once, even before any output
    assert time.monotonic() - started < 0.5
    events = []
    deadline = time.monotonic() + 240
    while not process.finished and time.monotonic() < deadline:
        events += process.poll()
        time.sleep(0.05)
    events += process.poll()
    assert process.finished and process.process.returncode == 0, process.errorLines
    assert process.failureMessage() is None
    assert events and events[-1].fraction == pytest.approx(1.0)
    assert [e.fraction for e in events] == sorted(e.fraction for e in events)
    assert {"fit", "apply"} <= {e.stage for e in events}
    report = json.loads((tmp_path / "report.json").read_text())
    protected = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "protected.nrrd")))
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(image)))
    assert protected.shape == original.shape
    assert np.abs(protected.astype(float) - original).max() <= report["epsilon_native"] + 1e-6


@needs_cli
def test_bad_input_gives_the_cli_one_line_message(tmp_path, sample_files):
    image, _ = sample_files
    empty = tmp_path / "empty.nrrd"
    reference = sitk.ReadImage(str(image))
    blank = sitk.Image(reference.GetSize(), sitk.sitkUInt8)
    blank.CopyInformation(reference)
    sitk.WriteImage(blank, str(empty))
    process = EngineProcess(command(tmp_path, image, empty, device="cpu", iterations=0))
    process.start()
    assert process.wait(timeout=120) == EXIT_BAD_INPUT
    message = process.failureMessage()
    assert message and "\n" not in message and "Traceback" not in message
    assert not (tmp_path / "protected.nrrd").exists()


@needs_cli
def test_cancel_stops_the_engine_and_says_so(tmp_path, sample_files):
    image, label = sample_files
    process = EngineProcess(command(tmp_path, image, label, device="cpu", iterations=5000))
    process.start()
    deadline = time.monotonic() + 120
    while not process.poll() and time.monotonic() < deadline:
        time.sleep(0.05)
    process.cancel()
    process.wait(timeout=30)
    assert process.process.returncode != 0
    assert process.failureMessage() == "Protection was cancelled; nothing was added to the scene."
    assert not (tmp_path / "protected.nrrd").exists()


@needs_cli
def test_missing_input_file_is_a_bad_input_in_one_sentence(tmp_path):
    process = EngineProcess(command(tmp_path, tmp_path / "absent.nrrd", tmp_path / "absent_label.nrrd"))
    process.start()
    assert process.wait(timeout=120) == EXIT_BAD_INPUT
    message = process.failureMessage()
    assert "absent.nrrd" in message and "\n" not in message
