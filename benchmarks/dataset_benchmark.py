"""Throughput of `umed-protect protect-dataset` applying a profile with 1 and 2 local Dask workers (not a test).

Run: .venv/bin/python benchmarks/dataset_benchmark.py [--studies 24] [--workers 1 2] [--device cpu|cuda]
Writes MR-like studies (protect_benchmark's case a: 25x256x256 float32, a small lesion) into a temporary folder,
fits a profile for a few iterations, then runs the command once per worker count in a fresh process. Studies per
minute are counted from the first study's start to the last one's end in the manifest (the cluster's start-up
is reported apart); memory is the peak resident memory of each worker process, as the manifest records it.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from protect_benchmark import CASES, make_study


def write_dataset(folder: Path, studies: int) -> None:
    """The same MR-like study under `studies` names, as NAME.nrrd + NAME_label.nrrd pairs."""
    import SimpleITK as sitk

    image, label = make_study(**CASES["a: MR-like 256x256x25, small lesion"])
    folder.mkdir(parents=True)
    for index in range(studies):
        sitk.WriteImage(sitk.GetImageFromArray(image), str(folder / f"study{index:03d}.nrrd"), True)
        sitk.WriteImage(sitk.GetImageFromArray(label), str(folder / f"study{index:03d}_label.nrrd"), True)


def run(dataset: Path, profile: Path, out: Path, workers: int, device: str) -> dict:
    """One protect-dataset run in a fresh process; its figures from the wall clock and the manifest."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "UMedProtectLib", "protect-dataset", "--dataset", str(dataset),
                    "--output-dir", str(out), "--profile", str(profile), "--workers", str(workers), "--device", device,
                    "--progress", "none"], check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert all(r["status"] == "done" for r in records), [r.get("error") for r in records]
    busy = max(r["finished"] for r in records) - min(r["started"] for r in records)
    peaks = {}
    for record in records:
        peaks[record["worker"]] = max(peaks.get(record["worker"], 0.0), record["peak_rss_mb"])
    return {"workers": workers, "studies": len(records), "wall_s": wall, "busy_s": busy,
            "per_minute": 60.0 * len(records) / busy, "peak_mb": max(peaks.values()), "processes": len(peaks)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=24)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--iterations", type=int, default=5, help="training iterations of the profile")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="umed-dataset-benchmark-") as temporary:
        folder = Path(temporary)
        write_dataset(folder / "data", args.studies)
        profile = folder / "profile.pt"
        subprocess.run([sys.executable, "-m", "UMedProtectLib", "fit-profile", "--dataset", str(folder / "data"),
                        "--profile-out", str(profile), "--iterations", str(args.iterations), "--device", args.device,
                        "--progress", "none"], check=True, capture_output=True, text=True)
        rows = [run(folder / "data", profile, folder / f"out{workers}", workers, args.device)
                for workers in args.workers]
    print("| workers | studies | studies per minute | wall s (with start-up) | peak memory per worker MB |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['workers']} | {row['studies']} | {row['per_minute']:.1f} | {row['wall_s']:.1f} | "
              f"{row['peak_mb']:.0f} |")
    if len(rows) > 1:
        print(f"ratio {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
              f"{rows[-1]['per_minute'] / rows[0]['per_minute']:.2f}x studies per minute")
    return 0


if __name__ == "__main__":
    sys.exit(main())
