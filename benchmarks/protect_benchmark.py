"""Wall time and peak memory of `protect` for an MR-like and a CT-like study (not part of the tests).

Run: .venv/bin/python benchmarks/protect_benchmark.py [--preset balanced] [--device cpu|cuda] [--cases a,b,c]
     [--command-line]
Each case runs in a fresh process so that its peak resident memory (ru_maxrss) is its own.
Targets on a 2-core machine: (a) under 30 s, (b) under 60 s; peak memory under 2 GB for every case, including
(c), a whole-body-sized CT (the memory bound of issue 12).
"""

import argparse
import json
import resource
import subprocess
import sys
import time

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--cases", default="a,b", help="which cases to run, by their letter [a,b]")
    parser.add_argument("--command-line", action="store_true",
                        help="run each case as `umed-protect protect` on files (peak of the whole command)")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        measure = run_command_line if args.command_line else run_case
        print(json.dumps(measure(args.case, args.preset, args.device)))
        return 0
    print("| case | preset | device | wall s | peak memory MB (study alone) | GPU peak MB | PSNR dB | ROI slices | "
          "iterations |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in [n for n in CASES if n.split(":")[0] in args.cases.split(",")]:
        command = [sys.executable, __file__, "--case", name, "--preset", args.preset, "--device", args.device]
        output = subprocess.run(command + ["--command-line"] * args.command_line, check=True, capture_output=True,
                                text=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        print(f"| {name} | {args.preset} | {args.device} | {row['wall_s']:.1f} | "
              f"{row['peak_mb']:.0f} ({row['study_mb']:.0f}) | {row['gpu_peak_mb']:.0f} | {row['psnr_db']:.1f} | "
              f"{row['roi_slices']} | {row['iterations']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
