"""Wall time and peak memory of `protect` for an MR-like and a CT-like study (not part of the tests).

Run: .venv/bin/python benchmarks/protect_benchmark.py [--preset balanced] [--device cpu|cuda] [--cases a,b,c]
     [--command-line | --dicom]
Each case runs in a fresh process so that its peak resident memory (ru_maxrss) is its own. --dicom writes the case
as a DICOM CT series with a SEG (by the tests' own pydicom/highdicom writers) and times reading it, protecting and
writing the derived series, so that the overhead of DICOM over arrays is known.
Targets on a 2-core machine: (a) under 30 s, (b) under 60 s; peak memory under 2 GB for every case, including
(c), a whole-body-sized CT (the memory bound of issue 12).
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = {
    "a: MR-like 256x256x25, small lesion": dict(shape=(25, 256, 256), dtype="float32", offset=400.0,
                                               noise=25.0, contrast=120.0, radii=(4, 12, 12)),
    "b: CT-like 512x512x60, lesion": dict(shape=(60, 512, 512), dtype="int16", offset=40.0,
                                          noise=15.0, contrast=-60.0, radii=(10, 30, 30)),
    "c: CT-like 512x512x600, lesion": dict(shape=(600, 512, 512), dtype="int16", offset=40.0,
                                           noise=15.0, contrast=-60.0, radii=(20, 40, 40)),
}


def make_study(shape, dtype, offset, noise, contrast, radii):
    """A noisy volume with an ellipsoidal lesion in its centre (CT-like volumes get air around a body).

    Built slice by slice in the final voxel type, so that making the study does not raise the peak memory that
    the benchmark reports for `protect`.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    image = np.empty(shape, dtype=dtype)
    label = np.zeros(shape, dtype=np.uint8)
    y, x = np.ogrid[:shape[1], :shape[2]]
    centre = [s / 2 for s in shape]
    body = ((y - centre[1]) / (shape[1] * 0.42)) ** 2 + ((x - centre[2]) / (shape[2] * 0.35)) ** 2 < 1
    for z in range(shape[0]):
        plane = rng.normal(offset, noise, shape[1:])
        if dtype == "int16":
            plane = np.where(body, plane, -1000.0 + rng.normal(0, 5, shape[1:]))
        lesion = sum(((axis - c) / r) ** 2 for axis, c, r in zip((z, y, x), centre, radii)) < 1
        label[z] = lesion
        image[z] = (plane + contrast * lesion).astype(dtype)
    return image, label


def run_case(name: str, preset: str, device: str) -> dict:
    """Protect one case in this process and return its figures."""
    import torch

    from UMedProtectLib import ProtectSettings, protect

    image, label = make_study(**CASES[name])
    study_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    result = protect(image, label, settings=ProtectSettings(preset=preset, device=device))
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
    return {"case": name, "wall_s": wall, "peak_mb": peak_mb, "study_mb": study_mb, "gpu_peak_mb": gpu_mb,
            "psnr_db": result.report["psnr_db"],
            "roi_slices": result.report["roi_slices"], "iterations": result.report["training"]["iterations_run"]}


def run_command_line(name: str, preset: str, device: str) -> dict:
    """The same case through `python -m UMedProtectLib protect` on files: peak memory of the whole command."""
    import tempfile

    import SimpleITK as sitk

    with tempfile.TemporaryDirectory() as folder:
        image, label = make_study(**CASES[name])
        for array, file_name in ((image, "image.nrrd"), (label, "label.nrrd")):
            sitk.WriteImage(sitk.GetImageFromArray(array), f"{folder}/{file_name}", True)
        del image, label
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "UMedProtectLib", "protect", "--image", f"{folder}/image.nrrd",
                        "--label", f"{folder}/label.nrrd", "--output", f"{folder}/protected.nrrd", "--difference",
                        f"{folder}/difference.nrrd", "--report", f"{folder}/report.json", "--preset", preset,
                        "--device", device, "--progress", "none"], check=True, capture_output=True)
        wall = time.perf_counter() - start
        report = json.loads(open(f"{folder}/report.json").read())
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"case": name + " (command line)", "wall_s": wall, "peak_mb": peak_mb, "study_mb": 0.0,
            "gpu_peak_mb": 0.0, "psnr_db": report["psnr_db"], "roi_slices": report["roi_slices"],
            "iterations": report["training"]["iterations_run"]}


def run_dicom(name: str, preset: str, device: str) -> dict:
    """The case as a DICOM series + SEG: read (GDCM, pydicom, highdicom), protect, write the derived series."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "Testing"))
    from UMedProtectLib import ProtectSettings, protect
    from UMedProtectLib.files.dicom.study import read_study
    from UMedProtectLib.files.dicom.writer import derivation_description, series_targets, stage_series
    from UMedProtectLib.files.transaction import OutputTransaction, created_folders

    from dicom_testing import new_study, write_ct_series, write_seg

    with tempfile.TemporaryDirectory() as folder:
        image, label = make_study(**CASES[name])
        files = write_ct_series(Path(folder) / "ct", image, new_study(), spacing=(0.7, 0.7, 1.25))
        write_seg(Path(folder) / "seg.dcm", files, {"lesion": label > 0})
        del image, label
        study_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        data, labels, series = read_study(Path(folder) / "ct", Path(folder) / "seg.dcm")
        read_s = time.perf_counter() - start
        result = protect(data.array, labels.array, data.spacing_xyz, ProtectSettings(preset=preset, device=device))
        written = time.perf_counter()
        out = Path(folder) / "out"
        with created_folders([t.parent for t in series_targets(series, out)]), OutputTransaction() as transaction:
            stage_series(transaction, result.protected, series, out, derivation_description(result.report))
            transaction.commit()
        end = time.perf_counter()
    return {"case": f"{name} (DICOM: read {read_s:.1f} s, write {end - written:.1f} s)", "wall_s": end - start,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "study_mb": study_mb,
            "gpu_peak_mb": 0.0, "psnr_db": result.report["psnr_db"], "roi_slices": result.report["roi_slices"],
            "iterations": result.report["training"]["iterations_run"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--cases", default="a,b", help="which cases to run, by their letter [a,b]")
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--command-line", action="store_true",
                     help="run each case as `umed-protect protect` on files (peak of the whole command)")
    how.add_argument("--dicom", action="store_true",
                     help="run each case from a DICOM series + SEG to a derived DICOM series (read + protect + write)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        measure = run_command_line if args.command_line else run_dicom if args.dicom else run_case
        print(json.dumps(measure(args.case, args.preset, args.device)))
        return 0
    print("| case | preset | device | wall s | peak memory MB (study alone) | GPU peak MB | PSNR dB | ROI slices | "
          "iterations |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in [n for n in CASES if n.split(":")[0] in args.cases.split(",")]:
        command = [sys.executable, __file__, "--case", name, "--preset", args.preset, "--device", args.device]
        output = subprocess.run(command + ["--command-line"] * args.command_line + ["--dicom"] * args.dicom,
                                check=True, capture_output=True, text=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        print(f"| {row['case']} | {args.preset} | {args.device} | {row['wall_s']:.1f} | "
              f"{row['peak_mb']:.0f} ({row['study_mb']:.0f}) | {row['gpu_peak_mb']:.0f} | {row['psnr_db']:.1f} | "
              f"{row['roi_slices']} | {row['iterations']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
