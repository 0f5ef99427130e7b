"""The three ways of giving the budget, measured on a real head CT and on the MR sample (docs/method.md).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/budget_examples.py [--preset fast] [--cases 0,3]
CT: the head CT of Debian's invesalius-examples package (`apt-get install invesalius-examples`; "ProMED CT
0051", 108 x 256 x 256, int16 HU), slices 62-77, with a sphere of radius 10 voxels in the brain as the region.
MR: the embedded sample study (MNI152 T1 slab, ventricles). Prints one Markdown table row per budget.
"""

import argparse
import plistlib
import tarfile
from pathlib import Path

import numpy as np

CRANIUM = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")


def cranium():
    """The InVesalius example head CT (z, y, x, int16 HU) and its spacing (x, y, z) in mm."""
    with tarfile.open(CRANIUM) as archive:
        members = {Path(m.name).name: m for m in archive.getmembers()}
        header = plistlib.load(archive.extractfile(members["main.plist"]))
        raw = archive.extractfile(members[header["matrix"]["filename"]]).read()
    volume = np.frombuffer(raw, dtype=header["matrix"]["dtype"]).reshape(header["matrix"]["shape"])
    return volume.copy(), tuple(float(s) for s in header["spacing"])


def head_ct():
    """Slices 62-77 of the InVesalius example head CT and a sphere of brain tissue in its middle."""
    volume = cranium()[0][62:78]
    z, y, x = np.ogrid[:volume.shape[0], :volume.shape[1], :volume.shape[2]]
    sphere = ((z - 8) * 1.5 / 0.957) ** 2 + (y - 128) ** 2 + (x - 128) ** 2 < 10 ** 2
    return volume.copy(), sphere.astype(np.uint8)


def mr_sample():
    """The embedded MNI152 slab and its ventricle label."""
    from UMedProtectLib.files.image_io import read_image
    from UMedProtectLib.files.sample import sample_paths

    image_path, label_path = sample_paths()
    return read_image(image_path).array, read_image(label_path).array


CASES = [  # (study, --epsilon, --window)
    ("CT", "4/255", None), ("CT", "4/255", "soft-tissue"), ("CT", "4/255", "brain"), ("CT", "5HU", "brain"),
    ("MR", "4/255", None), ("MR", "4/255", "60,120"), ("MR", "2units", None),
    ("CT", "37.3HU", "soft-tissue"),  # the default 4/255 of this CT's robust range, as a soft-tissue window shows it
]


def main() -> None:
    import torch

    from UMedProtectLib import ProtectSettings, protect
    from UMedProtectLib.budget import parse_budget

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--cases", help="comma-separated indices into CASES [all]")
    args = parser.parse_args()
    chosen = [CASES[int(i)] for i in args.cases.split(",")] if args.cases else CASES
    torch.set_num_threads(1)
    studies = {name: load() for name, load in (("CT", head_ct), ("MR", mr_sample)) if any(c[0] == name for c in chosen)}
    print("| study | --epsilon | --window | budget (native) | epsilon of the robust range | window | budget / window "
          "| largest change / window | ROI voxels changed > 1 grey level | PSNR in window dB | PSNR robust range dB |")
    print("|" + "---|" * 11)
    for study, budget, window in chosen:
        amount, unit = parse_budget(budget)
        settings = ProtectSettings(epsilon=amount, epsilon_unit=unit, window=window, preset=args.preset, device="cpu")
        report = protect(*studies[study], settings=settings).report
        seen = report["visibility"]
        shown = seen["window"]
        print(f"| {study} | {budget} | {window or '-'} | {report['epsilon_native']:.3g} | "
              f"{report['epsilon'] * 255:.3g}/255 | {shown['name']} L{shown['level']:.4g} W{shown['width']:.4g} | "
              f"{100 * seen['budget_of_window']:.2f}% | {100 * seen['max_change_of_window']:.2f}% | "
              f"{100 * seen['roi_visible_fraction']:.1f}% | {seen['psnr_db']:.1f} | {report['psnr_db']:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
