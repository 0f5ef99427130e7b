"""Wall time and peak memory of `protect` for an MR-like and a CT-like study (not part of the tests).

Run: .venv/bin/python benchmarks/protect_benchmark.py [--preset balanced] [--device cpu|cuda]
Each case runs in a fresh process so that its peak resident memory (ru_maxrss) is its own.
Targets on a 2-core machine: (a) under 30 s, (b) under 60 s, peak memory under 2 GB.
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
}


def make_study(shape, dtype, offset, noise, contrast, radii):
    """A noisy volume with an ellipsoidal lesion in its centre (CT-like volumes get air around a body)."""
    import numpy as np

    rng = np.random.default_rng(0)
    image = rng.normal(offset, noise, shape).astype(np.float32)
    z, y, x = np.ogrid[:shape[0], :shape[1], :shape[2]]
    centre = [s / 2 for s in shape]
    lesion = sum(((axis - c) / r) ** 2 for axis, c, r in zip((z, y, x), centre, radii)) < 1
    if dtype == "int16":
        body = ((y - centre[1]) / (shape[1] * 0.42)) ** 2 + ((x - centre[2]) / (shape[2] * 0.35)) ** 2 < 1
        image = np.where(body, image, -1000.0 + rng.normal(0, 5, shape))
    image[lesion] += contrast
    return image.astype(dtype), lesion.astype(np.uint8)


def run_case(name: str, preset: str, device: str) -> dict:
    """Protect one case in this process and return its figures."""
    import torch

    from UMedProtectLib import ProtectSettings, protect

    image, label = make_study(**CASES[name])
    start = time.perf_counter()
    result = protect(image, label, settings=ProtectSettings(preset=preset, device=device))
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else 0.0
    return {"case": name, "wall_s": wall, "peak_mb": peak_mb, "gpu_peak_mb": gpu_mb,
            "psnr_db": result.report["psnr_db"],
            "roi_slices": result.report["roi_slices"], "iterations": result.report["training"]["iterations_run"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="balanced")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case, args.preset, args.device)))
        return 0
    print("| case | preset | device | wall s | peak memory MB | GPU peak MB | PSNR dB | ROI slices | iterations |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in CASES:
        output = subprocess.run([sys.executable, __file__, "--case", name, "--preset", args.preset,
                                 "--device", args.device], check=True, capture_output=True, text=True).stdout
        row = json.loads(output.strip().splitlines()[-1])
        print(f"| {name} | {args.preset} | {args.device} | {row['wall_s']:.1f} | {row['peak_mb']:.0f} | "
              f"{row['gpu_peak_mb']:.0f} | {row['psnr_db']:.1f} | {row['roi_slices']} | {row['iterations']} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
