"""The `umed-protect` command end to end: outputs, reports, progress, profiles, bad inputs, cancellation."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk
import slicerio
from PIL import Image
from scipy import ndimage
from skimage.morphology import disk

from UMedProtectLib.cli.commands import DEMO_FILES
from UMedProtectLib.cli import main as cli_main
from UMedProtectLib.cli.main import main
from UMedProtectLib.files.image_io import read_image

from conftest import blob_study, sha256, sitk_image

REPOSITORY = Path(__file__).resolve().parents[2]
FAST = ["--iterations", "0", "--progress", "none"]


def run(argv, capsys):
    """main() in-process; returns (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def region_of(label: np.ndarray, band_width: int = 3) -> np.ndarray:
    """ROI plus its contour band (a disk of radius band_width), per axial slice: all that protection may change."""
    return ndimage.binary_dilation(label > 0, disk(band_width)[None])


def nothing_but(folder: Path, names) -> bool:
    """The folder holds exactly these names (no partial outputs, no hidden temporary folders)."""
    return sorted(os.listdir(folder)) == sorted(names)


def test_protect_sample_end_to_end(tmp_path, capsys, sample_files):
    image_path, label_path = sample_files
    before = {p: sha256(p) for p in sample_files}
    out, diff, report, preview = (tmp_path / n for n in ("p.nrrd", "d.nii.gz", "r.json", "v.png"))
    code, stdout, stderr = run(["protect", "--image", image_path, "--label", label_path, "--output", out,
                                "--difference", diff, "--report", report, "--preview", preview,
                                "--iterations", "2", "--seed", "3", "--progress", "none"], capsys)
    assert code == 0, stderr
    assert "PSNR" in stdout and str(out) in stdout
    assert {p: sha256(p) for p in sample_files} == before
    # Voxel type, geometry and metadata as an independent reader sees them.
    original, original_header = nrrd.read(str(image_path))
    protected, header = nrrd.read(str(out))
    assert protected.dtype == original.dtype == np.int16
    for key in ("space directions", "space origin", "space", "sizes"):
        np.testing.assert_array_equal(np.asarray(header[key]), np.asarray(original_header[key]))
    assert header["UMed_sample_source"] == original_header["UMed_sample_source"]
    # Only the ROI and its band change, within the budget; the difference file is exactly protected - original.
    label = read_image(label_path).array
    changed = (protected != original).transpose(2, 1, 0)
    assert changed.any() and not (changed & ~region_of(label)).any()
    data = json.loads(report.read_text())
    assert np.abs(protected.astype(float) - original).max() <= data["epsilon_native"] + 1e-6
    difference = np.asarray(nibabel.load(str(diff)).dataobj)
    np.testing.assert_array_equal(difference, protected.astype(np.float32) - original.astype(np.float32))
    for key in ("psnr_db", "psnr_roi_db", "ssim", "linf", "linf_native", "changed_fraction", "epsilon",
                "runtime_s", "device", "seed", "settings", "sha256", "umed_protect_version", "warnings"):
        assert key in data, key
    assert data["sha256"] == {"image": before[image_path], "label": before[label_path]}
    assert data["seed"] == 3 and data["settings"]["iterations"] == 2
    assert data["outputs"]["difference"] == str(diff.resolve())
    assert data["linf_native"] == float(np.abs(difference).max())
    picture = Image.open(preview)
    assert picture.format == "PNG" and picture.width > 3 * 300
    assert nothing_but(tmp_path, ["p.nrrd", "d.nii.gz", "r.json", "v.png"])


def test_split_formats_and_segmentation_label(tmp_path, capsys):
    image, label = blob_study()
    sitk.WriteImage(sitk_image(image, metadata={"Study_note": "x"}), str(tmp_path / "in.mhd"))
    reference = sitk.ReadImage(str(tmp_path / "in.mhd"))
    segmentation = slicerio.create_segmentation(label.shape[::-1], np.eye(4))
    matrix = np.eye(4)
    matrix[:3, :3] = np.reshape(reference.GetDirection(), (3, 3)) * np.asarray(reference.GetSpacing())
    matrix[:3, 3] = reference.GetOrigin()
    segmentation["ijkToLPS"] = matrix
    slicerio.add_segment(segmentation, (label == 1).transpose(2, 1, 0), {"id": "lesion"})
    slicerio.write_segmentation(str(tmp_path / "l.seg.nrrd"), segmentation)
    inputs = sorted(os.listdir(tmp_path))
    hashes = {name: sha256(tmp_path / name) for name in inputs}
    code, _, stderr = run(["protect", "--image", tmp_path / "in.mhd", "--label", tmp_path / "l.seg.nrrd",
                           "--output", tmp_path / "out.nhdr", "--difference", tmp_path / "diff.mhd", *FAST], capsys)
    assert code == 0, stderr
    assert {name: sha256(tmp_path / name) for name in inputs} == hashes
    result = sitk.ReadImage(str(tmp_path / "out.nhdr"))
    for attribute in ("GetDirection", "GetOrigin", "GetSpacing"):  # NRRD stores decimal text: last-bit rounding
        np.testing.assert_allclose(getattr(result, attribute)(), getattr(reference, attribute)(), rtol=0, atol=1e-12)
    assert result.GetMetaData("Study_note") == "x"
    assert result.GetPixelID() == reference.GetPixelID()
    changed = sitk.GetArrayFromImage(result) != image
    assert changed.any() and not (changed & ~region_of(label == 1)).any()
    assert nothing_but(tmp_path, inputs + ["out.nhdr", "out.raw.gz", "diff.mhd", "diff.zraw"])


def test_progress_json_lines(tmp_path, capsys, synthetic_files):
    image_path, label_path = synthetic_files()
    code, stdout, stderr = run(["protect", "--image", image_path, "--label", label_path, "--output",
                                tmp_path / "o.nrrd", "--iterations", "3", "--progress", "json"], capsys)
    assert code == 0, stderr
    events = [json.loads(line) for line in stdout.splitlines()]
    assert len(events) >= 4
    assert all(set(event) == {"stage", "fraction", "message"} for event in events)
    fractions = [event["fraction"] for event in events]
    assert all(0.0 <= f <= 1.0 for f in fractions) and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"fit", "done"} <= {event["stage"] for event in events}
    assert "PSNR" in stderr  # the summary moves to stderr so that stdout stays pure JSON lines


def test_profile_round_trip_reproduces_the_fitted_output(tmp_path, capsys, sample_files):
    image_path, label_path = sample_files
    profile = tmp_path / "study.umedprofile"
    common = ["--image", image_path, "--label", label_path, "--iterations", "2", "--progress", "none"]
    code, _, stderr = run(["protect", *common, "--output", tmp_path / "fit.nrrd", "--profile-out", profile], capsys)
    assert code == 0, stderr
    code, _, stderr = run(["protect", *common, "--output", tmp_path / "apply.nrrd", "--profile", profile,
                           "--report", tmp_path / "r.json"], capsys)
    assert code == 0, stderr
    np.testing.assert_array_equal(read_image(tmp_path / "apply.nrrd").array, read_image(tmp_path / "fit.nrrd").array)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["mode"] == "profile" and report["sha256"]["profile"] == sha256(profile)


def test_fit_profile_on_a_dataset_folder_then_apply(tmp_path, capsys):
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "labels").mkdir()
    for seed, extension in ((1, ".nrrd"), (2, ".nii.gz")):
        image, label = blob_study(seed=seed)
        sitk.WriteImage(sitk_image(image), str(tmp_path / "data" / "images" / f"case{seed}{extension}"))
        sitk.WriteImage(sitk_image(label), str(tmp_path / "data" / "labels" / f"case{seed}.nrrd"))
    profile = tmp_path / "p.pt"
    code, stdout, stderr = run(["fit-profile", "--dataset", tmp_path / "data", "--profile-out", profile,
                                "--report", tmp_path / "fit.json", *FAST[:2], "--progress", "none"], capsys)
    assert code == 0, stderr
    assert "2 studies" in stdout and profile.is_file()
    assert len(json.loads((tmp_path / "fit.json").read_text())["inputs"]) == 2
    code, _, stderr = run(["protect", "--image", tmp_path / "data" / "images" / "case1.nrrd", "--label",
                           tmp_path / "data" / "labels" / "case1.nrrd", "--output", tmp_path / "o.nrrd",
                           "--profile", profile, "--progress", "none"], capsys)
    assert code == 0, stderr
    code, _, stderr = run(["fit-profile", "--dataset", tmp_path / "data" / "labels", "--profile-out",
                           tmp_path / "q.pt", "--progress", "none"], capsys)
    assert code == 2 and "no image/label pairs" in stderr and not (tmp_path / "q.pt").exists()


def test_fit_profile_from_csv(tmp_path, capsys, synthetic_files):
    image_path, label_path = synthetic_files(".nii.gz")
    (tmp_path / "list.csv").write_text(f"image,label\n{image_path.name},{label_path.name}\n")
    code, _, stderr = run(["fit-profile", "--dataset", tmp_path / "list.csv", "--profile-out", tmp_path / "p.pt",
                           *FAST], capsys)
    assert code == 0, stderr


def _bad_cases(folder: Path):
    """(name, extra files to create, argv tail, expected message) for every bad input of issue 2."""
    image, label = blob_study()
    good_image, good_label = folder / "image.nrrd", folder / "label.nrrd"
    sitk.WriteImage(sitk_image(image), str(good_image))
    sitk.WriteImage(sitk_image(label), str(good_label))

    def write(name, array, **geometry):
        sitk.WriteImage(sitk_image(array, **geometry), str(folder / name))
        return folder / name

    nan_image = image.astype(np.float32)
    nan_image[2, 5, 5] = np.nan
    write("nan.nrrd", nan_image)
    write("constant.nrrd", np.full(image.shape, 7, np.int16))
    write("empty.nrrd", np.zeros(label.shape, np.uint8))
    write("elsewhere.nrrd", label, origin=(500.0, 0.0, 0.0))
    write("fraction.nii", label * 0.5)
    volume = sitk_image(image)
    sitk.WriteImage(sitk.JoinSeries([volume, volume]), str(folder / "four.nrrd"))  # two time points
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros(image.shape + (3,), np.uint8), isVector=True),
                    str(folder / "vector.nrrd"))
    (folder / "damaged.nrrd").write_bytes(b"NRRD0004\ntype: short\ndimension: 3\n\n\x00\x01")
    (folder / "junk.pt").write_bytes(b"not a profile")
    out = folder / "out.nrrd"
    base = ["--image", good_image, "--label", good_label]
    return [
        ("missing image", ["--image", folder / "no.nrrd", "--label", good_label, "--output", out], "does not exist"),
        ("missing label", ["--image", good_image, "--label", folder / "no.nrrd", "--output", out], "does not exist"),
        ("unsupported output", [*base, "--output", folder / "out.png"], "unsupported file type"),
        ("damaged image", ["--image", folder / "damaged.nrrd", "--label", good_label, "--output", out],
         "could not be read"),
        ("4D image", ["--image", folder / "four.nrrd", "--label", good_label, "--output", out], "4D"),
        ("vector image", ["--image", folder / "vector.nrrd", "--label", good_label, "--output", out], "vector"),
        ("NaN image", ["--image", folder / "nan.nrrd", "--label", good_label, "--output", out], "NaN"),
        ("constant image", ["--image", folder / "constant.nrrd", "--label", good_label, "--output", out],
         "constant"),
        ("empty label", ["--image", good_image, "--label", folder / "empty.nrrd", "--output", out], "empty"),
        ("absent label value", [*base, "--output", out, "--labels", "1,5"], "5"),
        ("label elsewhere", ["--image", good_image, "--label", folder / "elsewhere.nrrd", "--output", out],
         "does not cover"),
        ("non-integer label", ["--image", good_image, "--label", folder / "fraction.nii", "--output", out],
         "non-integer"),
        ("epsilon zero", [*base, "--output", out, "--epsilon", "0"], "outside (0, 1]"),
        ("epsilon above one", [*base, "--output", out, "--epsilon", "2"], "outside (0, 1]"),
        ("epsilon not a number", [*base, "--output", out, "--epsilon", "four"], "not a number"),
        ("output is the image", [*base, "--output", good_image], "input file"),
        ("output is the label", [*base, "--output", folder / "." / "label.nrrd"], "input file"),
        ("report is the image", [*base, "--output", out, "--report", good_image], "input file"),
        ("difference is the output", [*base, "--output", out, "--difference", out], "same file"),
        ("band width zero", [*base, "--output", out, "--band-width", "0"], "band width"),
        ("unknown preset", [*base, "--output", out, "--preset", "slow"], "invalid choice"),
        ("negative iterations", [*base, "--output", out, "--iterations", "-1"], "iterations"),
        ("missing profile", [*base, "--output", out, "--profile", folder / "none.pt"], "does not exist"),
        ("junk profile", [*base, "--output", out, "--profile", folder / "junk.pt"], "profile"),
        ("preview not png", [*base, "--output", out, "--preview", folder / "v.jpg"], ".png"),
        ("output folder missing", [*base, "--output", folder / "nowhere" / "o.nrrd"], "does not exist"),
    ]


def test_every_bad_input_is_refused_cleanly(tmp_path, capsys):
    cases = _bad_cases(tmp_path)
    inputs = sorted(os.listdir(tmp_path))
    hashes = {name: sha256(tmp_path / name) for name in inputs}
    for name, argv, message in cases:
        code, stdout, stderr = run(["protect", *FAST, *argv], capsys)  # the case's options win
        lines = stderr.strip().splitlines()
        assert code == 2, (name, stderr)
        assert len(lines) == 1 and lines[0].startswith("umed-protect: error: "), (name, stderr)
        assert message in lines[0], (name, lines[0])
        assert "Traceback" not in stderr + stdout
        assert sorted(os.listdir(tmp_path)) == inputs, name
        assert {n: sha256(tmp_path / n) for n in inputs} == hashes, name


def test_existing_output_needs_overwrite(tmp_path, capsys, synthetic_files):
    image_path, label_path = synthetic_files()
    out = tmp_path / "o.nrrd"
    out.write_bytes(b"keep me")
    argv = ["protect", "--image", image_path, "--label", label_path, "--output", out, *FAST]
    code, _, stderr = run(argv, capsys)
    assert code == 2 and "--overwrite" in stderr and out.read_bytes() == b"keep me"
    code, _, stderr = run(argv + ["--overwrite"], capsys)
    assert code == 0, stderr
    assert read_image(out).array.shape == read_image(image_path).array.shape


def test_internal_error_exits_1_with_a_hint_and_leaves_nothing(tmp_path, capsys, synthetic_files, monkeypatch):
    import UMedProtectLib.method.protection as engine

    def broken(*args, **kwargs):
        raise RuntimeError("simulated engine fault")

    monkeypatch.setattr(engine, "protect", broken)
    image_path, label_path = synthetic_files()
    inputs = sorted(os.listdir(tmp_path))
    argv = ["protect", "--image", image_path, "--label", label_path, "--output", tmp_path / "o.nrrd", *FAST]
    code, _, stderr = run(argv, capsys)
    assert code == 1 and "simulated engine fault" in stderr and "--debug" in stderr
    assert "Traceback" not in stderr and sorted(os.listdir(tmp_path)) == inputs
    code, _, stderr = run(argv + ["--debug"], capsys)
    assert code == 1 and "Traceback" in stderr


def test_evaluate_is_loaded_lazily(capsys, monkeypatch):
    code, out, _ = run(["evaluate", "--help"], capsys)
    assert code == 0 and "--quick" in out
    monkeypatch.setitem(sys.modules, "UMedProtectLib.evaluation.command", None)  # as if not installed
    # An option no evaluation accepts: should the module load after all, this fails fast instead of evaluating.
    code, _, err = run(["evaluate", "--no-such-option"], capsys)
    assert code == 2 and "evaluation module is not installed" in err
    code, out, _ = run(["protect", "--help"], capsys)  # the rest of the CLI works without it
    assert code == 0 and "--profile-out" in out


def test_usage_errors_are_one_line(capsys):
    for argv in (["protect"], ["nonsense"], ["protect", "--image", "a.nrrd"]):
        code, _, err = run(argv, capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("umed-protect: error: ")


def _environment():
    """Environment for a subprocess that imports the package from this checkout."""
    return dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""))


def test_real_subprocess(tmp_path, synthetic_files):
    image_path, label_path = synthetic_files()
    command = [sys.executable, "-m", "UMedProtectLib", "protect", "--image", str(image_path), "--label",
               str(label_path), "--iterations", "0", "--progress", "json"]
    done = subprocess.run(command + ["--output", str(tmp_path / "o.mha")], capture_output=True, text=True,
                          env=_environment(), timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["fraction"] == 1.0
    done = subprocess.run(command + ["--output", str(image_path)], capture_output=True, text=True,
                          env=_environment(), timeout=300)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "input file" in done.stderr


def test_sigterm_cancels_without_partial_files(tmp_path, sample_files):
    command = [sys.executable, "-m", "UMedProtectLib", "protect", "--image", str(sample_files[0]), "--label",
               str(sample_files[1]), "--output", str(tmp_path / "o.nrrd"), "--report", str(tmp_path / "r.json"),
               "--iterations", "100000", "--progress", "json"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=_environment())
    try:
        first = json.loads(process.stdout.readline())  # the engine has started: the study is read and checked
        assert first["stage"] == "prepare"
        time.sleep(3.0)  # well into training (early stopping takes minutes on this study)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert code == 130, process.stderr.read()
    assert os.listdir(tmp_path) == []


def test_sigterm_unwinds_through_a_library_that_catches_exception():
    # CI once saw SIGTERM land in a lazy torch import whose `except Exception` ate the cancel: exit 1, not 130.
    previous = signal.signal(signal.SIGTERM, cli_main._raise_cancelled)
    try:
        with pytest.raises(KeyboardInterrupt):
            try:
                signal.raise_signal(signal.SIGTERM)
            except Exception:  # noqa: BLE001 - what the library did
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_demo_writes_its_four_files_with_default_settings(tmp_path, capsys):
    folder = tmp_path / "demo"
    code, stdout, stderr = run(["demo", "--output-dir", folder, "--progress", "none"], capsys)
    assert code == 0, stderr
    assert nothing_but(folder, DEMO_FILES.values())
    report = json.loads((folder / DEMO_FILES["report"]).read_text())
    assert report["settings"]["preset"] == "balanced" and report["settings"]["iterations"] is None
    assert report["training"]["iterations_run"] > 0
    assert "PSNR" in stdout and "SSIM" in stdout and "L-inf" in stdout and str(folder) in stdout
    assert Image.open(folder / DEMO_FILES["preview"]).format == "PNG"
    # A second run may replace the demo's own files.
    code, _, stderr = run(["demo", "--output-dir", folder, *FAST], capsys)
    assert code == 0, stderr
    assert nothing_but(folder, DEMO_FILES.values())


@pytest.mark.parametrize("first, last, tissue", [(60, 64, "csf"), (112, 116, "white_matter")])
def test_properties_hold_on_template_studies_the_tests_do_not_contain(tmp_path, capsys, first, last, tissue):
    from UMedProtectLib.files.sample import template_study, write_template_study

    study = template_study(first, last, tissue)
    write_template_study(study, tmp_path / "image.nii.gz", tmp_path / "label.nrrd")
    code, _, stderr = run(["protect", "--image", tmp_path / "image.nii.gz", "--label", tmp_path / "label.nrrd",
                           "--output", tmp_path / "out.nii.gz", "--report", tmp_path / "r.json", *FAST], capsys)
    assert code == 0, stderr
    protected = read_image(tmp_path / "out.nii.gz")
    report = json.loads((tmp_path / "r.json").read_text())
    assert protected.array.dtype == np.int16
    changed = protected.array != study.image
    assert changed.any() and not (changed & ~region_of(study.label)).any()
    assert np.abs(protected.array.astype(float) - study.image).max() <= report["epsilon_native"] + 1e-6
    np.testing.assert_allclose(protected.origin, study.origin, atol=1e-4)
    np.testing.assert_allclose(protected.direction, study.direction, atol=1e-6)


@pytest.mark.parametrize("command", [[], ["protect"], ["fit-profile"], ["protect-dataset"], ["demo"], ["evaluate"]])
def test_version_on_every_command(command, capsys):
    from UMedProtectLib import __version__

    assert main([*command, "--version"]) == 0
    assert capsys.readouterr().out.strip() == f"umed-protect {__version__}"


def test_no_claim_of_invisibility_in_help_readme_or_panel(capsys):
    """Whether a change is visible depends on the window: the words must not promise it (docs/visibility.md)."""
    texts = []
    for command in [[], ["protect"], ["fit-profile"], ["protect-dataset"], ["demo"], ["evaluate"]]:
        assert main([*command, "--help"]) == 0
        texts.append(capsys.readouterr().out)
    root = Path(__file__).resolve().parents[2]
    for path in ("README.md", "CMakeLists.txt", "UMedProtect/UMedProtect.py",
                 "UMedProtect/Resources/UI/UMedProtect.ui"):
        texts.append((root / path).read_text())
    for text in texts:
        assert not re.search(r"\b(invisible|imperceptible)\b", text, re.IGNORECASE), text[:200]
