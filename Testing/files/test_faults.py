"""The fault matrix with real processes: SIGKILL at several points, two runs racing, the output folder vanishing or
turning read-only, a full disk. Each asserts: inputs unchanged, nothing partial or stray under the output folder,
and either a complete valid set of outputs or none."""

import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from UMedProtectLib import ProtectSettings
from UMedProtectLib.cli.main import main
from UMedProtectLib.files.transaction import RENAME_PAUSE_VARIABLE, STAGING_PREFIX, recover_stale
from UMedProtectLib.method.profile import Profile, make_perturbation, save_profile

from conftest import blob_study, sha256, sitk_image

REPOSITORY = Path(__file__).resolve().parents[2]
OUTPUTS = ("o.nrrd", "d.nrrd", "r.json", "v.png")


def environment():
    """A subprocess that imports the package from this checkout and uses one thread (the machine is shared)."""
    return dict(os.environ, PYTHONPATH=str(REPOSITORY) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                OMP_NUM_THREADS="1")


@pytest.fixture
def study(tmp_path):
    """A small real study on disk (image and label in their own folder) and the hashes of its files."""
    folder = tmp_path / "in"
    folder.mkdir()
    image, label = blob_study((6, 40, 48))
    paths = folder / "study.nrrd", folder / "study_label.nrrd"
    sitk.WriteImage(sitk_image(image), str(paths[0]), True)
    sitk.WriteImage(sitk_image(label), str(paths[1]), True)
    return paths, {p: sha256(p) for p in paths}


def protect_argv(paths, folder: Path, *extra, names=OUTPUTS):
    """`python -m UMedProtectLib protect` writing the four outputs into `folder`."""
    out, diff, report, preview = (folder / n for n in names)
    return [sys.executable, "-m", "UMedProtectLib", "protect", "--image", str(paths[0]), "--label", str(paths[1]),
            "--output", str(out), "--difference", str(diff), "--report", str(report), "--preview", str(preview),
            "--progress", "json", *map(str, extra)]


def launch(argv):
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())


def wait_for_stage(process, stage: str) -> None:
    """Read the JSON progress lines until one of `stage` arrives (the process must still be running then)."""
    for line in process.stdout:
        if line.startswith("{") and json.loads(line)["stage"] == stage:
            return
    raise AssertionError(f"the run ended before stage {stage!r}: {process.stderr.read()}")


def finish(process, timeout: float = 300):
    """Exit code and stderr of a launched run (its remaining stdout is kept as process.rest)."""
    try:
        process.rest, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
    return process.returncode, err


def visible(folder: Path):
    """The names in `folder` other than hidden staging folders."""
    return sorted(n for n in os.listdir(folder) if not n.startswith(STAGING_PREFIX))


def assert_complete_and_valid(folder: Path, image_path: Path, names=OUTPUTS) -> None:
    """The four outputs are there, readable, and belong to one run (difference = output - image, report agrees)."""
    out, diff, report = (folder / n for n in names[:3])
    original = sitk.GetArrayFromImage(sitk.ReadImage(str(image_path))).astype(np.float64)
    protected = sitk.GetArrayFromImage(sitk.ReadImage(str(out))).astype(np.float64)
    difference = sitk.GetArrayFromImage(sitk.ReadImage(str(diff))).astype(np.float64)
    np.testing.assert_array_equal(difference, protected - original)
    data = json.loads(report.read_text())
    assert data["linf_native"] == pytest.approx(np.abs(difference).max())
    assert data["changed_voxels"] == np.count_nonzero(difference)
    assert (folder / names[3]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def assert_all_or_nothing(folder: Path, image_path: Path) -> str:
    """Right after a fault: either no output at all or the complete valid set; returns which."""
    names = visible(folder)
    if not names:
        return "none"
    assert names == sorted(OUTPUTS), names
    assert_complete_and_valid(folder, image_path)
    return "all"


def run_here(argv, capsys):
    """main() in this process (torch is imported already: fast); returns (exit code, stderr)."""
    code = main([str(a) for a in argv[3:]])
    return code, capsys.readouterr().err


def test_sigkill_at_each_stage_leaves_all_or_nothing_and_the_next_run_cleans_up(tmp_path, study, capsys):
    paths, hashes = study
    # While staging the outputs, after reading the inputs, while fitting: one run per point, side by side. The
    # last two fit for minutes after their line (the first "fit" line comes after 1/20 of the iterations), so
    # they are surely still running when their turn comes.
    stages = {"write": 3, "prepare": 100_000, "fit": 400}
    folders = [tmp_path / stage for stage in stages]
    processes = []
    for folder, iterations in zip(folders, stages.values()):
        folder.mkdir()
        processes.append(launch(protect_argv(paths, folder, "--iterations", iterations)))
    try:
        for process, stage in zip(processes, stages):
            wait_for_stage(process, stage)
            process.kill()
    finally:
        for process in processes:
            finish(process)
    for process, folder in zip(processes, folders):
        # The write-stage run may just have finished before the kill reached it: then its set must be whole.
        assert process.returncode == -signal.SIGKILL or (folder.name == "write" and process.returncode == 0)
        assert_all_or_nothing(folder, paths[0])
    assert {p: sha256(p) for p in paths} == hashes
    # The next run into the same folder removes what the killed one left and writes a complete set.
    for folder in folders:
        code, err = run_here(protect_argv(paths, folder, "--iterations", "0", "--overwrite", "--progress", "none"),
                             capsys)
        assert code == 0, err
        assert sorted(os.listdir(folder)) == sorted(OUTPUTS)
        assert_complete_and_valid(folder, paths[0])
    assert {p: sha256(p) for p in paths} == hashes


_DIE_BETWEEN_RENAMES = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from UMedProtectLib.files.transaction import OutputTransaction

    folder, rename = Path(sys.argv[1]).resolve(), os.replace

    def rename_then_die(source, destination):
        # The real rename of the set's first file, then a kill that no Python code can catch.
        rename(source, destination)
        if Path(destination).parent == folder:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = rename_then_die
    with OutputTransaction(overwrite=True) as transaction:
        for name in ("a.nrrd", "b.json"):
            transaction.stage(folder / name).write_text("new " + name)
        transaction.commit()
""")


def test_sigkill_between_the_renames_is_rolled_back_by_the_next_run(tmp_path, study, capsys):
    paths, hashes = study
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.nrrd").write_text("old a.nrrd")
    done = subprocess.run([sys.executable, "-c", _DIE_BETWEEN_RENAMES, str(out)], env=environment(), timeout=120)
    assert done.returncode == -signal.SIGKILL
    # Killed after one of two renames: a mixture is on disk, with the journal that undoes it.
    assert (out / "a.nrrd").read_text() == "new a.nrrd" and not (out / "b.json").exists()
    assert len(os.listdir(out)) == 2
    # A real protect run into that folder first restores the set as it was, then writes its own outputs.
    code, err = run_here(protect_argv(paths, out, "--iterations", "0", "--progress", "none"), capsys)
    assert code == 0, err
    assert (out / "a.nrrd").read_text() == "old a.nrrd" and not (out / "b.json").exists()
    assert sorted(os.listdir(out)) == sorted(OUTPUTS + ("a.nrrd",))
    assert {p: sha256(p) for p in paths} == hashes


def test_stale_staging_of_a_live_run_is_left_alone(tmp_path):
    """recover_stale removes only folders whose owner died: one a live process holds is kept."""
    code = textwrap.dedent("""
        import sys, time
        from pathlib import Path
        from UMedProtectLib.files.transaction import OutputTransaction
        transaction = OutputTransaction()
        transaction.stage(Path(sys.argv[1]) / "x.json").write_text("{}")
        print("staged", flush=True)
        time.sleep(120)
    """)
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                               env=environment())
    try:
        assert process.stdout.readline().strip() == "staged"
        assert recover_stale(tmp_path) == [] and len(os.listdir(tmp_path)) == 1
        process.kill()
        process.wait(timeout=30)
        assert len(recover_stale(tmp_path)) == 1 and os.listdir(tmp_path) == []
    finally:
        if process.poll() is None:
            process.kill()


def test_two_runs_to_the_same_outputs_never_mix(tmp_path, study):
    paths, hashes = study
    # Without --overwrite one run wins and the other says so; with it both finish and the last set stands whole.
    runs = {}
    for overwrite in (False, True):
        folder = tmp_path / f"overwrite-{overwrite}"
        folder.mkdir()
        flags = ["--overwrite"] if overwrite else []
        runs[folder] = [launch(protect_argv(paths, folder, "--iterations", "2", "--seed", seed, *flags))
                        for seed in (1, 2)]
    for folder, processes in runs.items():
        results = [finish(process) for process in processes]
        codes = [code for code, _ in results]
        if folder.name.endswith("True"):
            assert codes == [0, 0], results
        else:
            assert sorted(codes) == [0, 2], results
            loser = results[codes.index(2)][1]
            assert len(loser.strip().splitlines()) == 1 and "already exists" in loser
            assert json.loads((folder / "r.json").read_text())["seed"] == 1 + codes.index(0)
        assert sorted(os.listdir(folder)) == sorted(OUTPUTS)
        assert_complete_and_valid(folder, paths[0])
    assert {p: sha256(p) for p in paths} == hashes


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` mounted on `folder` (needs root and mount; else the test is skipped)."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def make_read_only(folder: Path) -> None:
    """Read-only for this user: a read-only remount for root (who ignores permissions), else chmod."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
    else:
        folder.chmod(0o555)


def read_only_candidate(folder: Path):
    """A folder that make_read_only can turn read-only: a small tmpfs for root, a plain folder otherwise."""
    if os.geteuid() == 0:
        return small_disk(folder, "8m")
    folder.mkdir()
    return contextlib.nullcontext(folder)


def test_output_folder_removed_or_made_read_only_during_the_run(tmp_path, study):
    paths, hashes = study
    removed = tmp_path / "removed"
    removed.mkdir()
    with read_only_candidate(tmp_path / "read-only") as read_only:
        processes = [launch(protect_argv(paths, folder, "--iterations", "0")) for folder in (removed, read_only)]
        for process in processes:
            wait_for_stage(process, "prepare")  # the outputs were checked writable; now the folders change
        shutil.rmtree(removed)
        make_read_only(read_only)
        (code, err), (code_ro, err_ro) = (finish(process) for process in processes)
        assert code == 2 and len(err.strip().splitlines()) == 1 and "does not exist" in err, err
        assert code_ro == 2 and len(err_ro.strip().splitlines()) == 1, err_ro
        assert "Read-only" in err_ro or "Permission denied" in err_ro, err_ro
        assert os.listdir(read_only) == []
    assert not removed.exists()
    assert {p: sha256(p) for p in paths} == hashes


@pytest.mark.parametrize("command", ["protect", "protect-dataset"])
def test_read_only_output_folder_is_refused_before_the_fit(tmp_path, study, capsys, command):
    paths, _ = study
    with read_only_candidate(tmp_path / "out") as out:
        make_read_only(out)
        # A fit of 100000 iterations would take hours: the refusal must come before it starts.
        argv = protect_argv(paths, out, "--iterations", "100000")[3:] if command == "protect" else [
            "protect-dataset", "--dataset", paths[0].parent, "--output-dir", out, "--workers", "1", "--iterations",
            "100000", "--progress", "json"]
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        assert code == 2 and captured.err.count("\n") == 1, captured.err
        assert "cannot write into the output folder" in captured.err, captured.err
        assert captured.out == ""  # refused before the first progress line: nothing was read or fitted
        assert os.listdir(out) == []


@pytest.mark.parametrize("fails_on", ["image", "preview"])
def test_full_disk_exits_2_in_one_line_and_leaves_nothing(tmp_path, study, capsys, fails_on):
    paths, hashes = study
    reference = tmp_path / "reference"
    reference.mkdir()
    quiet = ("--iterations", "0", "--progress", "none")
    code, err = run_here(protect_argv(paths, reference, *quiet), capsys)
    assert code == 0, err
    page = 4096
    pages = {name: -(-(reference / name).stat().st_size // page) for name in OUTPUTS}
    # No room at all, or room for the two images but not the preview (a plain OSError from Python's own write).
    room = 0 if fails_on == "image" else (pages["o.nrrd"] + pages["d.nrrd"] + 1) * page
    assert pages["v.png"] > 1
    with small_disk(tmp_path / "out", "1m") as out:
        (out / "filler").write_bytes(b"\0" * (shutil.disk_usage(out).free - room))
        code, err = run_here(protect_argv(paths, out, *quiet), capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "full" in err or "No space left" in err, err
        assert os.listdir(out) == ["filler"]
    assert {p: sha256(p) for p in paths} == hashes


def paused_environment(seconds: float, threads: int = 1):
    """environment() with the transaction pausing `seconds` after each rename (outputs.RENAME_PAUSE_VARIABLE)."""
    return dict(environment(), **{RENAME_PAUSE_VARIABLE: str(seconds), "OMP_NUM_THREADS": str(threads)})


def wait_until(condition, process, timeout: float = 300) -> None:
    """Poll every 10 ms until `condition()` holds, while the process runs."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.01)


WITH_A_PARKED_THREAD = ("import runpy, sys, threading; threading.Thread(target=threading.Event().wait, daemon=True)"
                        ".start(); sys.argv[0] = 'UMedProtectLib'; runpy.run_module('UMedProtectLib', "
                        "run_name='__main__', alter_sys=True)")


def signal_other_threads(pid: int, signum: int) -> int:
    """Send `signum` to each thread of `pid` but its main one (tgkill), as the kernel may; returns how many."""
    numbers = {"x86_64": 234, "aarch64": 131}
    if platform.machine() not in numbers:
        pytest.skip(f"tgkill's system call number on {platform.machine()} is not known here")
    libc = ctypes.CDLL(None, use_errno=True)
    threads = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != pid]
    for thread in threads:
        libc.syscall(numbers[platform.machine()], pid, thread, signum)
    return len(threads)


def identities(folder: Path):
    """name -> (inode, SHA-256) of the files in `folder`."""
    return {n: (os.stat(folder / n).st_ino, sha256(folder / n)) for n in visible(folder)}


def test_sigterm_to_another_thread_between_the_renames_rolls_the_whole_set_back(tmp_path, study, capsys):
    paths, hashes = study
    out = tmp_path / "out"
    out.mkdir()
    code, err = run_here(protect_argv(paths, out, "--iterations", "0", "--seed", "1", "--progress", "none"), capsys)
    assert code == 0, err
    old = identities(out)
    # The second run pauses a second after each of its four renames. A parked thread shares the process with it:
    # torch's own pool may not be started by a run of 0 iterations, and the kernel may pick any thread.
    argv = protect_argv(paths, out, "--iterations", "0", "--seed", "2", "--overwrite")
    process = subprocess.Popen([argv[0], "-c", WITH_A_PARKED_THREAD, *argv[3:]],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=paused_environment(1.0, threads=2))
    try:
        wait_until(lambda: os.stat(out / OUTPUTS[1]).st_ino != old[OUTPUTS[1]][0], process)  # the first rename
        assert signal_other_threads(process.pid, signal.SIGTERM) > 0
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and err.strip() == "umed-protect: error: cancelled; no output file was written"
    # Every file is the old one again (the same inode: restored from its backup), nothing staged is left.
    assert identities(out) == old and sorted(os.listdir(out)) == sorted(OUTPUTS)
    assert {p: sha256(p) for p in paths} == hashes


def test_sigkill_after_the_last_rename_keeps_the_complete_set_at_the_next_run(tmp_path, study, capsys):
    paths, hashes = study
    out = tmp_path / "out"
    out.mkdir()
    process = subprocess.Popen(protect_argv(paths, out, "--iterations", "0", "--progress", "none"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=paused_environment(1.0))
    try:
        # All four renamed: the run now pauses before removing its journal. Kill it there.
        wait_until(lambda: set(OUTPUTS) <= set(os.listdir(out)), process)
        process.kill()
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert any(name.startswith(STAGING_PREFIX) for name in os.listdir(out))  # its journal is still there
    complete = identities(out)
    assert_complete_and_valid(out, paths[0])
    # An unrelated run into the folder removes the stale staging folder and keeps the complete set.
    code, err = run_here(protect_argv(paths, out, "--iterations", "0", "--progress", "none",
                                      names=("o2.nrrd", "d2.nrrd", "r2.json", "v2.png")), capsys)
    assert code == 0, err
    assert sorted(os.listdir(out)) == sorted(OUTPUTS + ("o2.nrrd", "d2.nrrd", "r2.json", "v2.png"))
    assert {n: complete[n] for n in OUTPUTS} == {n: identities(out)[n] for n in OUTPUTS}
    assert {p: sha256(p) for p in paths} == hashes


_STAGE_THEN_WAIT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from UMedProtectLib.files.transaction import OutputTransaction

    with OutputTransaction(overwrite=True) as transaction:
        transaction.stage(Path(sys.argv[1]) / "x.json").write_text("new")
        print("staged", flush=True)
        sys.stdin.readline()
        transaction.commit()
    print("committed", flush=True)
""")


def test_protect_dataset_start_up_leaves_a_live_runs_staging_alone_and_warns_on_the_console(tmp_path, study):
    paths, hashes = study
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    (out / "sub" / "x.json").write_text("old")
    writer = subprocess.Popen([sys.executable, "-c", _STAGE_THEN_WAIT, str(out / "sub")], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=environment())
    try:
        assert writer.stdout.readline().strip() == "staged"
        # A profile with a visible budget, fitted for another design than the one asked for.
        settings = ProtectSettings(epsilon=1.0, design="quiet-rim")
        profile = tmp_path / "loud.pt"
        save_profile(Profile.from_perturbation(make_perturbation(settings), settings, {}), profile)
        done = subprocess.run([sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset",
                               str(paths[0].parent), "--output-dir", str(out), "--workers", "1", "--device", "cpu",
                               "--profile", str(profile), "--design", "published", "--iterations", "7",
                               "--progress", "none"],
                              capture_output=True, text=True, env=environment(), timeout=600)
        assert done.returncode == 0, done.stderr
        # The live writer's staging folder survived the dataset run's start-up: it commits now.
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "committed" and writer.wait(timeout=60) == 0
        # The profile's visible budget and the design it overrode are said on the console, not only in the manifest.
        assert "warning (1 of 1 studies): design 'published' was not used" in done.stdout, done.stdout
        assert "warning (1 of 1 studies): epsilon 255/255 is above 16/255" in done.stdout, done.stdout
        assert "warning (1 of 1 studies): iterations 7 not used: a profile is applied without fitting" in done.stdout
        assert "evidence: Design 'quiet-rim'" in done.stdout, done.stdout  # the design applied, not the one given
    finally:
        if writer.poll() is None:
            writer.kill()
    assert os.listdir(out / "sub") == ["x.json"] and (out / "sub" / "x.json").read_text() == "new"
    assert {p: sha256(p) for p in paths} == hashes


def test_cancelling_a_dataset_run_says_which_studies_it_kept(tmp_path, study):
    paths, hashes = study
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b", "c"):
        for path, suffix in zip(paths, ("", "_label")):
            shutil.copyfile(path, data / f"{name}{suffix}.nrrd")
    out = tmp_path / "out"
    # One worker, a second's pause after each rename: the studies finish one by one, seconds apart.
    process = subprocess.Popen([sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(data),
                                "--output-dir", str(out), "--workers", "1", "--iterations", "0", "--device", "cpu",
                                "--progress", "none"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=paused_environment(1.0))
    try:
        wait_until(lambda: (out / "manifest.jsonl").is_file() and (out / "manifest.jsonl").read_bytes().count(b"\n"),
                   process)
        process.terminate()
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    recorded = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    # The next study may have had its outputs renamed into place, without its record, when the cancel came.
    unrecorded = sum((out / f"{name}.nrrd").exists() for name in "abc") - len(recorded)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == (
        f"umed-protect: error: cancelled; studies finished before the cancel: {len(recorded)} of 3, kept in "
        f"{str(out)!r} and its manifest" + (f"; {unrecorded} more have outputs in {str(out)!r} that the manifest does "
                                            "not record (written just before the cancel, or by an earlier run)"
                                            if unrecorded else "") + "; rerun with --resume to protect the rest")
    for record in recorded:  # what the message says is there, is there
        assert record["status"] == "done" and all((out / name).is_file() for name in record["outputs"])
    assert {p: sha256(p) for p in paths} == hashes


def test_a_dataset_run_cancelled_between_a_studys_renames_and_its_record_says_what_is_in_out(tmp_path, study):
    paths, hashes = study
    data = tmp_path / "data"
    data.mkdir()
    for path, suffix in zip(paths, ("", "_label")):
        shutil.copyfile(path, data / f"a{suffix}.nrrd")
    out = tmp_path / "out"
    # Two seconds' pause after each rename: cancelled once the study's first output is in place, before its record.
    process = subprocess.Popen([sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(data),
                                "--output-dir", str(out), "--workers", "1", "--iterations", "0", "--device", "cpu",
                                "--progress", "none"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env=paused_environment(2.0))
    try:
        wait_until(lambda: any(p.is_file() for p in out.glob("a*.nrrd")), process)
        process.terminate()
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    # It said "no study was finished, no output file was written" with the study's files in OUT.
    assert err.strip().splitlines()[-1] == (
        f"umed-protect: error: cancelled; no study was finished and recorded; 1 more have outputs in {str(out)!r} "
        "that the manifest does not record (written just before the cancel, or by an earlier run); rerun with "
        "--resume to protect the rest"), err
    assert {p: sha256(p) for p in paths} == hashes


_PAUSE_AFTER_THE_COMMIT = textwrap.dedent("""
    import sys, time
    from UMedProtectLib.cli.main import main
    from UMedProtectLib.files import transaction

    commit = transaction.OutputTransaction.commit

    def commit_then_pause(self):  # the window between the set being in place and the command's return, widened
        written = commit(self)
        print("committed", file=sys.stderr, flush=True)
        time.sleep(60)
        return written

    transaction.OutputTransaction.commit = commit_then_pause
    sys.exit(main(sys.argv[1:]))
""")

_SLOW_SHUTDOWN = textwrap.dedent("""
    import atexit, runpy, sys, time
    atexit.register(time.sleep, 5)  # an interpreter shutdown that takes a while (threads joined, modules torn down)
    atexit.register(print, "shutting down", file=sys.stderr, flush=True)  # runs first: atexit is last in, first out
    sys.argv = ["umed-protect", *sys.argv[1:]]
    runpy.run_module("UMedProtectLib.__main__", run_name="__main__")
""")


@pytest.mark.parametrize("script, marker, message", [
    (_PAUSE_AFTER_THE_COMMIT, "committed", "umed-protect: warning: cancelled after the outputs were written; the 4 "
                                           "files are complete"),
    (_SLOW_SHUTDOWN, "shutting down", ""),
], ids=["after the commit", "during the shutdown"])
def test_a_signal_after_the_outputs_are_in_place_does_not_deny_them(tmp_path, study, script, marker, message):
    # It said "cancelled; no output file was written" (exit 130) with the complete set in place, or ended as 143 with
    # no word during the interpreter's shutdown.
    paths, hashes = study
    out = tmp_path / "out"
    out.mkdir()
    argv = protect_argv(paths, out, "--iterations", "0", "--progress", "none")
    process = subprocess.Popen([argv[0], "-c", script, *argv[3:]], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env=environment())
    try:
        for line in process.stderr:
            if line.strip() == marker:
                break
        process.send_signal(signal.SIGTERM)
        err = process.communicate(timeout=120)[1]
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert err.strip().startswith(message) and err.count("\n") == bool(message), err
    assert_complete_and_valid(out, paths[0])
    assert {p: sha256(p) for p in paths} == hashes


def test_a_full_disk_while_a_dataset_study_copies_its_label_names_the_output(tmp_path):
    # The label is copied unchanged beside the protected image; on a full disk the study's error named the input
    # label (shutil's error carries the source file first).
    data = tmp_path / "data"
    for sub in ("images", "labels"):
        (data / sub).mkdir(parents=True)
    image, label = blob_study((8, 256, 256))
    smooth = np.where(label > 0, 550, 300).astype(np.int16)  # compresses to a few kB
    sitk.WriteImage(sitk_image(smooth), str(data / "images" / "a.nrrd"), True)
    sitk.WriteImage(sitk_image(label), str(data / "labels" / "a.nrrd"), False)  # 512 kB, more than the room left
    with small_disk(tmp_path / "out", "1m") as out:
        (out / "filler").write_bytes(b"\0" * (shutil.disk_usage(out).free - 128 * 1024))
        done = subprocess.run([sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(data),
                               "--output-dir", str(out), "--workers", "1", "--iterations", "0", "--device", "cpu",
                               "--progress", "none"], capture_output=True, text=True, env=environment(), timeout=600)
        assert done.returncode == 3, done.stderr
        record = json.loads((out / "manifest.jsonl").read_text().splitlines()[-1])
        assert record["status"] == "failed" and "No space left on device" in record["error"], record
        assert str(out / "labels" / "a.nrrd") in record["error"] and str(data) not in record["error"], record
        assert sorted(p.name for p in out.rglob("*") if not p.is_dir()) == ["filler", "manifest.jsonl"]
