"""Real corpus 1: the MNI152 T1 template and its tissue maps shipped in the nilearn wheel (no download)."""

from __future__ import annotations

from typing import Dict

import numpy as np
from scipy import ndimage

from .corpus import Corpus, Study, centre_crop_or_pad, normalise_percentiles
from .split import slab_split

# Tissue probability above which a voxel belongs to a tissue; CSF is the brain mask where neither map reaches 0.3.
TISSUE_THRESHOLD = 0.5
CSF_THRESHOLD = 0.3
TASKS = ("wm", "gm", "csf")
TASK_NAMES = {"wm": "white matter", "gm": "grey matter", "csf": "cerebrospinal fluid"}


def _axial(image) -> np.ndarray:
    """nibabel (x, y, z) -> SimpleITK order (z, y, x), anterior at the top of each slice."""
    return np.ascontiguousarray(np.asarray(image.dataobj, dtype=np.float32).transpose(2, 1, 0)[:, ::-1, :])


def load_mni_volumes() -> Dict[str, np.ndarray]:
    """The 1 mm template, tissue maps and brain mask, in-plane halved to 2 mm (axial slices stay 1 mm apart)."""
    from nilearn import datasets

    loaders = {
        "t1": datasets.load_mni152_template, "gm": datasets.load_mni152_gm_template,
        "wm": datasets.load_mni152_wm_template, "mask": datasets.load_mni152_brain_mask,
    }
    volumes = {}
    for key, loader in loaders.items():
        # order=1 zoom of the probability maps keeps them probabilities; the mask is thresholded again below.
        volumes[key] = ndimage.zoom(_axial(loader(resolution=1)), (1.0, 0.5, 0.5), order=1)
    volumes["mask"] = volumes["mask"] > 0.5
    return volumes


def task_label(volumes: Dict[str, np.ndarray], task: str) -> np.ndarray:
    """The binary label of a task inside the brain mask."""
    mask = volumes["mask"]
    if task == "wm":
        return mask & (volumes["wm"] > TISSUE_THRESHOLD)
    if task == "gm":
        return mask & (volumes["gm"] > TISSUE_THRESHOLD)
    if task == "csf":
        return mask & (volumes["gm"] <= CSF_THRESHOLD) & (volumes["wm"] <= CSF_THRESHOLD)
    raise ValueError(f"unknown MNI task {task!r}; choose one of {', '.join(TASKS)}")


def mni_corpus(task: str, slab: int = 10, guard: int = 2, test_every: int = 4, min_foreground: int = 30,
               size: tuple = (112, 96)) -> Corpus:
    """Axial slices with at least `min_foreground` target pixels, split by slabs; each slab is a study."""
    volumes = load_mni_volumes()
    label = task_label(volumes, task)
    image = normalise_percentiles(volumes["t1"])
    image = centre_crop_or_pad(image, *size)
    label = centre_crop_or_pad(label.astype(np.uint8), *size)
    keep = np.flatnonzero(label.reshape(label.shape[0], -1).sum(axis=1) >= min_foreground)
    first, last = int(keep[0]), int(keep[-1]) + 1
    train_slabs, test_slabs = slab_split(last - first, slab, test_every, guard, offset=1)

    def study(indices, split):
        z = [first + i for i in indices]
        return Study(f"mni-{task}-{split}-z{z[0]:03d}", image[z].copy(), label[z].copy(), z)

    return Corpus(
        name=f"mni-{task}",
        description=(f"MNI152 T1 (nilearn), {TASK_NAMES[task]}, axial slices 1 mm apart at 2 mm in-plane, "
                     f"split by slabs of {slab} slices with {guard}-slice guards"),
        train=[study(s, "train") for s in train_slabs],
        test=[study(s, "test") for s in test_slabs],
    )
