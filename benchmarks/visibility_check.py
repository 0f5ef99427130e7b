"""The default protection's visibility on a real head CT, and the ROI's mean change per design (docs/visibility.md).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/visibility_check.py --work /tmp/visibility [--shifts]
CT: the head CT of Debian's invesalius-examples package (`apt-get install invesalius-examples`; "ProMED CT 0051",
108 x 256 x 256, int16 HU), written to NRRD in --work with a sphere of radius 10 voxels in the brain (the sphere of
budget_examples.py, in the whole volume). `umed-protect protect` runs on it with every setting at its default; the
figures of its report go to docs/results/visibility.json. With --shifts, also the ROI's mean change for each design
and seed (fast preset) on that CT and on the embedded MR sample.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from budget_examples import cranium, mr_sample

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "visibility.json"
# (design, seed, iterations): the published design fitted (fast preset) and untrained (0 iterations), the others fitted.
SHIFT_CASES = ([("published", seed, None) for seed in (0, 1, 2)] + [("published", seed, 0) for seed in (0, 1, 2)]
               + [(design, 0, None) for design in ("carrier", "quiet", "quiet-rim")])


def write_head_ct(folder: Path):
    """The whole head CT and the brain sphere (centred on slice 70) as NRRD files; returns their paths."""
    import SimpleITK as sitk

    volume, spacing = cranium()
    z, y, x = np.ogrid[:volume.shape[0], :volume.shape[1], :volume.shape[2]]
    sphere = ((z - 70) * spacing[2] / spacing[0]) ** 2 + (y - 128) ** 2 + (x - 128) ** 2 < 10 ** 2
    paths = folder / "head_ct.nrrd", folder / "brain_sphere.nrrd"
    for array, path in zip((volume, sphere.astype(np.uint8)), paths):
        image = sitk.GetImageFromArray(array)
        image.SetSpacing(spacing)
        sitk.WriteImage(image, str(path), True)
    return paths


def default_run(folder: Path) -> dict:
    """`umed-protect protect` with every setting at its default; the report's figures that docs/visibility.md quotes."""
    image, label = write_head_ct(folder)
    command = ["umed-protect", "protect", "--image", str(image), "--label", str(label), "--output",
               str(folder / "protected.nrrd"), "--report", str(folder / "report.json"), "--preview",
               str(folder / "preview.png"), "--progress", "none", "--overwrite"]
    subprocess.run([sys.executable, "-m", "UMedProtectLib", *command[1:]], check=True)
    report = json.loads((folder / "report.json").read_text())
    return {"command": " ".join(command[:3] + ["head_ct.nrrd", "--label", "brain_sphere.nrrd", "--output", "..."]),
            "budget": report["epsilon_given"], "epsilon_native": report["epsilon_native"],
            "reading": report["reading"], "linf_native": report["linf_native"],
            "changed_fraction": report["changed_fraction"],
            "windows": [{"name": seen["window"]["name"], "level": seen["window"]["level"],
                         "width": seen["window"]["width"], "max_grey_levels": 255 * seen["max_change_of_window"],
                         "roi_visible_fraction": seen["roi_visible_fraction"], "psnr_db": seen["psnr_db"]}
                        for seen in report["standard_windows"]],
            "mean_shift": report["mean_shift"], "warnings": report["warnings"],
            "runtime_s": report["runtime_s"], "device": report["device"]}


def shifts(folder: Path) -> list:
    """The ROI's mean change per design and seed (fast preset, CPU), on the CT at the old default (4/255 of its
    robust range) and on the MR sample at its default."""
    import torch

    from UMedProtectLib import ProtectSettings, protect
    from UMedProtectLib.files.image_io import read_image

    torch.set_num_threads(1)
    image, label = write_head_ct(folder)
    studies = {"CT": (read_image(image).array, read_image(label).array), "MR": mr_sample()}
    rows = []
    for study, (volume, roi) in studies.items():
        for design, seed, iterations in SHIFT_CASES:
            settings = ProtectSettings(epsilon=4 / 255, design=design, seed=seed, preset="fast", iterations=iterations,
                                       device="cpu")
            report = protect(volume, roi, settings=settings).report
            rows.append({"study": study, "design": design, "seed": seed,
                         "iterations_run": (report.get("training") or {}).get("iterations_run"),
                         "budget": report["epsilon_native"],
                         **{key: report["mean_shift"][key] for key in ("native", "of_budget", "down_fraction",
                                                                        "up_fraction")}})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the NRRD files, outputs and report")
    parser.add_argument("--shifts", action="store_true", help="also measure the mean change per design and seed")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["head_ct_default"] = default_run(args.work)
    if args.shifts:
        results["mean_shift_by_design"] = {"command": "benchmarks/visibility_check.py --shifts (fast preset, "
                                           "epsilon 4/255 of the robust range, CPU)", "rows": shifts(args.work)}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["head_ct_default"], indent=2))


if __name__ == "__main__":
    main()
