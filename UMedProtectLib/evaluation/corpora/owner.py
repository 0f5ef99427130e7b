"""The data owner's own studies as a corpus (`umed-protect evaluate --dataset DIR_OR_CSV`).

The pairs are found as `fit-profile` finds them (`UMedProtectLib/dataset/layouts.py`), read with the engine's readers,
scaled to [0, 1] per volume with the 0.5th and 99.5th percentiles (as the engine does, so epsilon means the same
to both), and reduced to the axial slices that hold any label; every label value above 0 is the target. Slices
are cropped or zero-padded around their centre to the largest height and width found. The split is by study and
deterministic: the studies sorted by image path, every 4th (the 4th, 8th, ...) is a test study; with fewer than
4 studies the last one is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from ...dataset.layouts import find_pairs, split_name
from ...errors import InputError
from .corpus import Corpus, Study, centre_crop_or_pad, normalise_percentiles

TEST_EVERY = 4


def _read_study(image_path: Path, label_path: Path) -> Study:
    from ...files.image_io import read_image
    from ...files.label_io import read_label

    image = read_image(image_path)
    label = read_label(label_path, image)
    volume = np.asarray(image.array, dtype=np.float32)
    target = np.asarray(label.array) > 0
    if volume.ndim == 2:
        volume, target = volume[None], target[None]
    kept = np.flatnonzero(target.reshape(len(target), -1).any(axis=1))
    return Study(split_name(image_path)[0] or image_path.name, normalise_percentiles(volume)[kept],
                 target[kept].astype(np.uint8), kept.tolist())


def dataset_corpus(source: Union[str, Path]) -> Corpus:
    """The studies of a CSV or folder, split by study into training and test studies."""
    pairs = sorted(find_pairs(source), key=lambda pair: str(pair[0]))
    studies = [s for s in (_read_study(*pair) for pair in pairs) if len(s.image)]
    if len(studies) < 2:
        raise InputError(f"dataset {str(source)!r} has {len(studies)} studies with a label; the evaluation needs "
                         "at least 2 (one to train on, one to test on)")
    height = max(s.image.shape[1] for s in studies)
    width = max(s.image.shape[2] for s in studies)
    for study in studies:
        study.image = centre_crop_or_pad(study.image, height, width)
        study.label = centre_crop_or_pad(study.label, height, width)
    is_test = [(i + 1) % TEST_EVERY == 0 for i in range(len(studies))]
    if not any(is_test):
        is_test[-1] = True
    name = Path(source).stem if Path(source).is_file() else Path(source).name
    return Corpus(
        name=f"dataset-{name}",
        description=(f"the owner's studies from {str(source)!r}: {len(studies)} studies with a label, their labelled "
                     f"axial slices at {height}x{width}, every {TEST_EVERY}th study (sorted by path) for testing"),
        train=[s for s, test in zip(studies, is_test) if not test],
        test=[s for s, test in zip(studies, is_test) if test])
