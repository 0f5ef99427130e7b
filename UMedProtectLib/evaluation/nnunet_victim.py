"""nnU-Net v2 as a victim family: the real package, used as its users use it.

The training split (clean or protected, labels unchanged) is written as an nnU-Net raw dataset, one case per study
(NIfTI, spacing 1 mm, channel name "image", so nnU-Net z-scores it), planned and preprocessed by nnU-Net, trained by
its default trainer for `NnUNetRecipe.epochs` epochs of `iterations` batches (fold "all": every training case), and
the clean test studies are predicted by nnU-Net's predictor. Every run is its own process (nnunet_worker.py).
`nnunet-2d` trains the 2d configuration on the studies' axial slices, `nnunet-3d` the 3d_fullres configuration
on the studies as volumes (small volumes: the corpora's studies are stacks of about 10 slices).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

import numpy as np
import SimpleITK as sitk
import torch

from ..errors import InputError

CONFIGURATIONS = {"nnunet-2d": "2d", "nnunet-3d": "3d_fullres"}
DATASET_ID = 990  # any free id: every run has its own nnU-Net folders


@dataclass(frozen=True)
class NnUNetRecipe:
    """How long nnU-Net trains: epochs of `iterations` batches (nnU-Net's default: 1000 epochs of 250)."""

    epochs: int = 4
    iterations: int = 250


def _write(array: np.ndarray, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0, 1.0, 1.0))
    sitk.WriteImage(image, str(path))


def write_raw_dataset(folder: Path, volumes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                      test_volumes: Sequence[np.ndarray]) -> Path:
    """An nnU-Net raw dataset under `folder`: training cases with labels, and the test cases in imagesTs."""
    dataset = folder / f"Dataset{DATASET_ID}_umed"
    for sub in ("imagesTr", "labelsTr", "imagesTs"):
        (dataset / sub).mkdir(parents=True, exist_ok=True)
    for index, (volume, label) in enumerate(zip(volumes, labels)):
        _write(volume.astype(np.float32), dataset / "imagesTr" / f"case_{index:04d}_0000.nii.gz")
        _write(label.astype(np.uint8), dataset / "labelsTr" / f"case_{index:04d}.nii.gz")
    for index, volume in enumerate(test_volumes):
        _write(volume.astype(np.float32), dataset / "imagesTs" / f"test_{index:04d}_0000.nii.gz")
    description = {"channel_names": {"0": "image"}, "labels": {"background": 0, "target": 1},
                   "numTraining": len(volumes), "file_ending": ".nii.gz"}
    (dataset / "dataset.json").write_text(json.dumps(description, indent=1))
    return dataset


def check_installed() -> None:
    """A one-line refusal when nnunetv2 is missing (it comes with the evaluation extra)."""
    import importlib.util

    if importlib.util.find_spec("nnunetv2") is None:
        raise InputError("the nnU-Net victims need the 'nnunetv2' package: pip install -e \".[evaluation]\"")


def worker_environment(root: Path, seed: int) -> dict:
    """The environment of one worker process: nnU-Net's folders under `root` and this process's torch threads."""
    return {**os.environ, "nnUNet_raw": str(root / "raw"), "nnUNet_preprocessed": str(root / "preprocessed"),
            "nnUNet_results": str(root / f"results-seed{seed}"), "nnUNet_compile": "false",
            # a new process takes every core unless told, whatever --threads set here
            "OMP_NUM_THREADS": str(torch.get_num_threads())}


class NnUNetVictim:
    """One training split in nnU-Net's folders: planned once, trained once per seed, each seed's test predictions."""

    def __init__(self, victim: str, volumes: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                 test_volumes: Sequence[np.ndarray], recipe: NnUNetRecipe, device: str):
        check_installed()
        self.configuration = CONFIGURATIONS[victim]
        self.recipe, self.device = recipe, device
        self._folder = tempfile.TemporaryDirectory(prefix="umed-nnunet-")
        self.root = Path(self._folder.name)
        self.dataset = write_raw_dataset(self.root / "raw", volumes, labels, test_volumes)
        self.test_shapes = [volume.shape for volume in test_volumes]

    def train_and_predict(self, seed: int) -> tuple[List[np.ndarray], float]:
        """nnU-Net trained with `seed` on the training split; its predictions of the test volumes and the seconds."""
        out = self.root / f"predictions-seed{seed}"
        environment = worker_environment(self.root, seed)
        command = [sys.executable, "-m", "UMedProtectLib.evaluation.nnunet_worker", str(DATASET_ID),
                   self.configuration, str(seed), str(self.recipe.epochs), str(self.recipe.iterations), self.device,
                   str(self.dataset / "imagesTs"), str(out)]
        start = time.monotonic()
        # nnU-Net draws its progress bars in UTF-8 whatever the locale (a C locale would fail to decode them)
        done = subprocess.run(command, env=environment, capture_output=True, encoding="utf-8", errors="replace")
        if done.returncode != 0:
            raise RuntimeError(f"nnU-Net run failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
        predictions = [sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"test_{i:04d}.nii.gz"))).astype(np.uint8)
                       for i in range(len(self.test_shapes))]
        return predictions, time.monotonic() - start

    def close(self) -> None:
        """Remove the nnU-Net folders."""
        self._folder.cleanup()
