"""`umed-protect protect-dataset`: a 2-worker local Dask cluster, a failing study, SIGKILL and resume, the manifest."""

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from UMedProtectLib.settings import settings_from
from UMedProtectLib.cli.main import build_parser, main
from UMedProtectLib.dataset.manifest import Manifest, still_valid
from UMedProtectLib.dataset.protect_dataset import duration
from UMedProtectLib.dataset.study_job import StudyJob, run_study, study_seed

from conftest import blob_study, sha256, sitk_image

REPO = Path(__file__).resolve().parents[2]
STUDIES = 20
BAD = 10  # the study in the middle of the dataset whose label is empty


def write_dataset(folder: Path, bad: int = BAD) -> Path:
    """20 small studies in images/ and labels/; study `bad` has an empty label map."""
    for sub in ("images", "labels"):
        (folder / sub).mkdir(parents=True)
    for index in range(STUDIES):
        image, label = blob_study((8, 48, 48), seed=index)
        if index == bad:
            label[:] = 0
        sitk.WriteImage(sitk_image(image), str(folder / "images" / f"case{index:02d}.nrrd"), True)
        sitk.WriteImage(sitk_image(label), str(folder / "labels" / f"case{index:02d}.nrrd"), True)
    return folder


def records(out: Path):
    """The manifest's records, oldest first."""
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def tree(folder: Path):
    """Every file under a folder (relative path -> SHA-256), the manifest left out."""
    return {p.relative_to(folder).as_posix(): sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != "manifest.jsonl"}


def environment():
    """A subprocess environment that imports the package from this checkout, one torch thread per process."""
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}", "OMP_NUM_THREADS": "1"}


def command(dataset: Path):
    """The dataset run the tests share: 2 local workers, each study fitted with its own seed for 0 iterations.

    Fitting for 0 iterations keeps the seeded initial generators, so every output depends on the study's seed
    while the run stays fast.
    """
    return [sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(dataset), "--workers", "2",
            "--iterations", "0", "--device", "cpu", "--difference"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run over the dataset with a bad study in the middle: (dataset, output folder, process)."""
    folder = tmp_path_factory.mktemp("reference")
    dataset, out = write_dataset(folder / "data"), folder / "out"
    done = subprocess.run(command(dataset) + ["--output-dir", str(out), "--progress", "json"], env=environment(),
                          capture_output=True, text=True, timeout=900)
    return dataset, out, done


def test_two_worker_cluster_protects_the_dataset_and_records_the_bad_study(reference):
    dataset, out, done = reference
    assert done.returncode == 3, done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    # Progress from the start: the workers starting, then the workers up, before the first study finishes.
    assert events[0] == {"stage": "workers", "fraction": 0.0, "message": "starting 2 local Dask worker(s)"}
    studies = [e for e in events if e["stage"] == "studies"]
    assert studies[0]["message"].startswith("0/20 studies, the workers are up")
    assert len(studies) == STUDIES + 1 and all("ETA" in e["message"] for e in studies)
    assert all(re.search(r"ETA (\d+ h \d\d min|\d+ min \d\d s|\d+ s) left", e["message"]) for e in studies[1:])
    assert [e["fraction"] for e in studies] == sorted(e["fraction"] for e in studies) and events[-1]["fraction"] == 1
    assert "| protected | 19 |" in done.stderr and "| failed | 1 |" in done.stderr
    assert f"failed: images/case{BAD:02d}.nrrd: the label map is empty" in done.stderr
    # The summary ends with every study's warnings (each once, with how many studies had it) and the threat model.
    warned = {w for r in records(out) if r["status"] == "done" for w in r["warnings"]}
    assert warned and all(re.search(rf"  warning \(\d+ of 19 studies\): {re.escape(w)}\n", done.stderr)
                          for w in warned)
    assert "  evidence: Design 'published' has not been measured to defeat any victim" in done.stderr

    latest = Manifest(out).latest()
    assert len(records(out)) == STUDIES and len(latest) == STUDIES
    bad = latest[f"images/case{BAD:02d}.nrrd"]
    assert bad["status"] == "failed" and "\n" not in bad["error"] and "outputs" not in bad
    assert not (out / "images" / f"case{BAD:02d}.nrrd").exists()
    for index in range(STUDIES):
        if index == BAD:
            continue
        name = f"case{index:02d}.nrrd"
        record = latest[f"images/{name}"]
        assert record["status"] == "done" and record["seed"] == study_seed(0, f"images/{name}")
        assert record["outputs"] == {f"images/{name}": sha256(out / "images" / name),
                                     f"images/case{index:02d}_difference.nrrd":
                                         sha256(out / "images" / f"case{index:02d}_difference.nrrd"),
                                     f"labels/{name}": sha256(dataset / "labels" / name)}
        original = sitk.ReadImage(str(dataset / "images" / name))
        protected = sitk.ReadImage(str(out / "images" / name))
        difference = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "images" / f"case{index:02d}_difference.nrrd")))
        change = sitk.GetArrayFromImage(protected).astype(np.float64) - sitk.GetArrayFromImage(original)
        assert np.allclose(protected.GetDirection(), original.GetDirection())
        assert np.array_equal(change, difference) and 0 < np.abs(change).max() <= record["metrics"]["epsilon_native"]
        assert (out / "labels" / name).read_bytes() == (dataset / "labels" / name).read_bytes()
    assert len({r["seed"] for r in records(out)}) == STUDIES


def test_sigkill_then_resume_gives_the_bytes_of_an_uninterrupted_run(tmp_path, capsys, reference):
    dataset, expected, _ = reference
    out = tmp_path / "out"
    process = subprocess.Popen(command(dataset) + ["--output-dir", str(out), "--progress", "none"], env=environment(),
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    manifest = out / "manifest.jsonl"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.is_file() and manifest.read_bytes().count(b"\n") >= 5:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)  # the whole group: the command and its Dask workers, as in a crash
    process.wait()
    finished = [r["study"] for r in records(out) if r["status"] == "done"]
    assert 5 <= len(records(out)) < STUDIES

    assert main(command(dataset)[3:] + ["--output-dir", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    resumed = subprocess.run(command(dataset) + ["--output-dir", str(out), "--resume", "--progress", "none"],
                             env=environment(), capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 3, resumed.stderr
    assert f"{len(finished)} already done, {STUDIES - len(finished)} to protect" in resumed.stdout
    assert tree(out) == tree(expected)
    assert not list(out.rglob(".umed-partial-*"))
    done_records = [r["study"] for r in records(out) if r["status"] == "done"]
    assert sorted(done_records) == sorted(set(done_records)) and len(done_records) == STUDIES - 1


def test_existing_cluster_by_scheduler_address_applies_a_profile_loaded_once_per_worker(tmp_path, capsys):
    from distributed import Client, LocalCluster

    from UMedProtectLib import ProtectSettings, fit_profile, load_profile, protect, save_profile
    from UMedProtectLib.dataset.cluster import PLUGIN_NAME

    dataset, out, profile_path = tmp_path / "data", tmp_path / "out", tmp_path / "p.pt"
    dataset.mkdir()
    studies = {f"s{index}": blob_study((8, 48, 48), seed=index) for index in range(4)}
    for name, (image, label) in studies.items():
        sitk.WriteImage(sitk_image(image), str(dataset / f"{name}.nrrd"), True)
        sitk.WriteImage(sitk_image(label), str(dataset / f"{name}_label.nrrd"), True)
    save_profile(fit_profile(list(studies.values())[:2], ProtectSettings(iterations=2, device="cpu")), profile_path)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster, Client(cluster) as client:
        assert main(["protect-dataset", "--dataset", str(dataset), "--output-dir", str(out), "--profile",
                     str(profile_path), "--scheduler", cluster.scheduler_address, "--device", "cpu"]) == 0
        loaded = client.run(lambda dask_worker: dask_worker.plugins[PLUGIN_NAME].profile is not None)
    assert list(loaded.values()) == [True, True]
    assert "4 protected now" in capsys.readouterr().out
    profile = load_profile(profile_path)
    for name, (image, label) in studies.items():
        written = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{name}.nrrd")))
        assert np.array_equal(written, protect(image, label, settings=ProtectSettings(device="cpu"),
                                               profile=profile).protected)


def job_for(tmp_path: Path, image: Path, label: Path) -> StudyJob:
    """A job writing under tmp_path/out."""
    return StudyJob(image.relative_to(tmp_path).as_posix(), image, label, tmp_path, tmp_path / "out", 7, True)


def test_unreadable_and_nan_studies_fail_with_one_line_and_write_nothing(tmp_path):
    args = build_parser().parse_args(["protect-dataset", "--dataset", str(tmp_path), "--output-dir", "x",
                                      "--iterations", "0", "--device", "cpu"])
    image, label = blob_study((4, 32, 32))
    sitk.WriteImage(sitk_image(label), str(tmp_path / "l.nrrd"), True)
    (tmp_path / "garbage.nrrd").write_bytes(b"NRRD0004\nnot really\n")
    nan_image = image.astype(np.float32)
    nan_image[2, 16, 16] = np.nan
    sitk.WriteImage(sitk_image(nan_image), str(tmp_path / "nan.nrrd"), True)
    for name, expected in (("garbage.nrrd", "could not"), ("nan.nrrd", "NaN")):
        record = run_study(job_for(tmp_path, tmp_path / name, tmp_path / "l.nrrd"), settings_from(args))
        assert record["status"] == "failed" and expected in record["error"] and "\n" not in record["error"]
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_manifest_ignores_and_cuts_a_torn_line_and_checks_output_hashes(tmp_path):
    manifest = Manifest(tmp_path)
    manifest.start(fresh=True)
    (tmp_path / "a.nrrd").write_bytes(b"protected")
    manifest.append({"study": "a", "status": "done", "input_sha256": {"x": "1"},
                     "outputs": {"a.nrrd": sha256(tmp_path / "a.nrrd")}})
    with open(manifest.path, "ab") as stream:
        stream.write(b'{"study": "b", "status": "do')  # killed in the middle of a line
    assert list(manifest.latest()) == ["a"]
    manifest.start(fresh=False)
    manifest.append({"study": "b", "status": "failed"})
    assert [r["study"] for r in manifest.records()] == ["a", "b"]
    assert still_valid(manifest.latest()["a"], tmp_path, {"x": "1"})
    assert not still_valid(manifest.latest()["a"], tmp_path, {"x": "2"})
    (tmp_path / "a.nrrd").write_bytes(b"changed")
    assert not still_valid(manifest.latest()["a"], tmp_path, {"x": "1"})


def test_torchrun_two_process_gloo_fit_writes_one_profile_that_loads_and_protects(tmp_path):
    import torch

    from UMedProtectLib import ProtectSettings, fit_profile, load_profile, protect

    dataset = tmp_path / "data"
    dataset.mkdir()
    studies = [blob_study((8, 48, 48), seed=index) for index in range(3)]
    for index, (image, label) in enumerate(studies):
        sitk.WriteImage(sitk_image(image), str(dataset / f"s{index}.nrrd"), True)
        sitk.WriteImage(sitk_image(label), str(dataset / f"s{index}_label.nrrd"), True)
    profile_path = tmp_path / "out" / "p.pt"
    profile_path.parent.mkdir()
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "UMedProtectLib", "fit-profile", "--dataset", str(dataset), "--profile-out",
                           str(profile_path), "--iterations", "3", "--device", "cpu", "--progress", "none"],
                          env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("fitted a profile on 3 studies") == 1  # rank 0 alone reports and writes
    assert [p.name for p in profile_path.parent.iterdir()] == ["p.pt"]
    profile = load_profile(profile_path)
    assert profile.info["studies"] == 3 and profile.info["training"]["iterations_run"] == 3
    result = protect(*studies[0], settings=ProtectSettings(device="cpu"), profile=profile)
    assert 0 < np.abs(result.difference).max() <= result.report["epsilon_native"]

    # Alone, rank 0 would have fitted exactly this: the difference is rank 1's slices in the averaged gradients.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = fit_profile(studies, ProtectSettings(iterations=3, device="cpu"))
    finally:
        torch.set_num_threads(threads)
    assert max(float((alone.state[k] - profile.state[k]).abs().max()) for k in alone.state) > 1e-4


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (42.4, "42 s"), (200, "3 min 20 s"),
                                           (3600 + 5 * 60 + 9, "1 h 05 min"), (26 * 3600, "26 h 00 min")])
def test_the_eta_is_a_duration_in_words_never_a_clock_time(seconds, text):
    assert duration(seconds) == text


def one_study(data: Path) -> Path:
    """A dataset of one small study in images/ and labels/."""
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    image, label = blob_study((4, 32, 32))
    sitk.WriteImage(sitk_image(image), str(data / "images" / "a.nrrd"), True)
    sitk.WriteImage(sitk_image(label), str(data / "labels" / "a.nrrd"), True)
    return data


def test_a_run_stopped_before_any_study_finished_leaves_the_manifest_as_it_was(tmp_path):
    data, out, fresh = one_study(tmp_path / "data"), tmp_path / "out", tmp_path / "fresh"
    argv = [sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(data), "--workers", "1",
            "--device", "cpu"]
    first = subprocess.run(argv + ["--output-dir", str(out), "--iterations", "0", "--progress", "none"],
                           env=environment(), capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr
    before = (out / "manifest.jsonl").read_bytes()
    # `--overwrite --progress json | head -1`: the run stops at its next line, once the workers are up; it emptied
    # the earlier manifest there, so that the earlier run's outputs were no longer recorded.
    process = subprocess.Popen(argv + ["--output-dir", str(out), "--iterations", "0", "--overwrite", "--progress",
                                       "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment())
    assert json.loads(process.stdout.readline())["stage"] == "workers"
    process.stdout.close()
    assert process.wait(timeout=600) == 2, process.stderr.read()
    assert (out / "manifest.jsonl").read_bytes() == before
    # Ctrl+C (to the command and its workers) once they are up, before the study finished: an empty manifest was
    # left, which refused a plain rerun.
    process = subprocess.Popen(argv + ["--output-dir", str(fresh), "--iterations", "5000", "--progress", "json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(),
                               start_new_session=True)
    for line in process.stdout:
        if json.loads(line)["stage"] == "studies":
            break
    os.killpg(process.pid, signal.SIGINT)
    err = process.communicate(timeout=600)[1]
    assert process.returncode == 130
    # The workers got the Ctrl+C too, and each printed a KeyboardInterrupt traceback of 30 lines.
    assert err.splitlines()[-1].startswith("umed-protect: error: cancelled;") and "Traceback" not in err, err
    assert not (fresh / "manifest.jsonl").exists()
    rerun = subprocess.run(argv + ["--output-dir", str(fresh), "--iterations", "0", "--progress", "none"],
                           env=environment(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr


def test_a_local_cluster_serves_no_dashboard_and_leaves_nothing_in_the_temporary_folder(tmp_path):
    # With port 8787 taken (as by another Dask cluster) the scheduler warned in 4 lines and served HTTP on another
    # port; Dask's scratch lock files and the workers' torchinductor_root/ stayed in $TMPDIR after every run.
    data = one_study(tmp_path / "data")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    with socket.socket() as taken:
        with contextlib.suppress(OSError):  # taken already by someone else: the same situation
            taken.bind(("127.0.0.1", 8787))
            taken.listen()
        done = subprocess.run([sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(data),
                               "--output-dir", str(tmp_path / "out"), "--workers", "1", "--iterations", "0",
                               "--device", "cpu", "--progress", "none"],
                              env={**environment(), "TMPDIR": str(temporary)}, capture_output=True, text=True,
                              timeout=600)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert os.listdir(temporary) == []


def test_dicomdir_without_any_dicom_study_is_refused_before_any_work(tmp_path, capsys):
    image, label = blob_study((4, 32, 32))
    sitk.WriteImage(sitk_image(image), str(tmp_path / "case.nrrd"), True)
    sitk.WriteImage(sitk_image(label), str(tmp_path / "case_label.nrrd"), True)
    out = tmp_path / "out"
    assert main(["protect-dataset", "--dataset", str(tmp_path), "--output-dir", str(out), "--dicomdir",
                 "--iterations", "0", "--progress", "none"]) == 2
    assert "--dicomdir indexes DICOM series, and the dataset holds none" in capsys.readouterr().err
    assert not out.exists()
