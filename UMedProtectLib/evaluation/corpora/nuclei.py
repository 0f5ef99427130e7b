"""Real corpora 2 and 3: the fluorescence nuclei image (2D) and volume (3D) with instance labels shipped inside the
`stardist` wheel.

The files are read with tifffile from the installed package's folder, without importing stardist (whose
import pulls in its compiled extensions and csbdeep); only the data files are used.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import List

import numpy as np

from ...errors import InputError
from .corpus import Corpus, Study, normalise_percentiles
from .split import slab_split


def stardist_data_folder() -> Path:
    """The folder holding img2d.tif and mask2d.tif in the installed stardist package."""
    spec = importlib.util.find_spec("stardist")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the nuclei corpus needs the 'stardist' package (pip install stardist); "
                         "it is only used for the image it ships")
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "images"
    if not (folder / "img2d.tif").is_file():
        raise InputError(f"stardist is installed but {folder / 'img2d.tif'} is missing")
    return folder


def nuclei_corpus(tile: int = 64, strip_guard: int = 8) -> Corpus:
    """512x512 image cut into horizontal strips of `tile` rows; every 4th strip is test; each strip is a study.

    A strip is cut into tiles of tile x tile that form the study's "slices". Strips next to a strip of the other
    split lose `strip_guard` rows on that side (replaced by the neighbouring rows of their own strip), so no
    tile touches a tile of the other split.
    """
    import tifffile

    folder = stardist_data_folder()
    image = normalise_percentiles(tifffile.imread(folder / "img2d.tif").astype(np.float32))
    label = (tifffile.imread(folder / "mask2d.tif") > 0).astype(np.uint8)
    rows = image.shape[0]
    # slab_split on rows gives row sets with guards; each set is then cut into tiles of `tile` rows.
    train_rows, test_rows = slab_split(rows, tile + strip_guard, test_every=4, guard=strip_guard // 2, offset=2)

    def studies(row_sets: List[List[int]], split: str) -> List[Study]:
        out = []
        for row_set in row_sets:
            if len(row_set) < tile:
                continue
            top = row_set[0] + (len(row_set) - tile) // 2
            tiles_image = [image[top:top + tile, x:x + tile] for x in range(0, image.shape[1] - tile + 1, tile)]
            tiles_label = [label[top:top + tile, x:x + tile] for x in range(0, image.shape[1] - tile + 1, tile)]
            out.append(Study(f"nuclei-{split}-row{top:03d}", np.stack(tiles_image), np.stack(tiles_label),
                             list(range(top, top + tile))))
        return out

    return Corpus(
        name="nuclei",
        description=(f"stardist's 2D fluorescence nuclei image (512x512) with its instance masks as foreground, "
                     f"strips of {tile} rows as studies, split by strip with guard rows"),
        train=studies(train_rows, "train"),
        test=studies(test_rows, "test"),
    )


def nuclei_3d_corpus(slab: int = 5, guard: int = 1) -> Corpus:
    """stardist's 3D nuclei volume (31 x 61 x 57) with its instance masks as foreground: axial slabs of `slab`
    slices are the studies, every 3rd slab a test slab, `guard` slices dropped at each side of a train/test
    boundary."""
    import tifffile

    folder = stardist_data_folder()
    if not (folder / "img3d.tif").is_file():
        raise InputError(f"stardist is installed but {folder / 'img3d.tif'} is missing")
    volume = normalise_percentiles(tifffile.imread(folder / "img3d.tif").astype(np.float32))
    label = (tifffile.imread(folder / "mask3d.tif") > 0).astype(np.uint8)
    train_slabs, test_slabs = slab_split(volume.shape[0], slab, test_every=3, guard=guard, offset=1)

    def studies(slabs: List[List[int]], split: str) -> List[Study]:
        return [Study(f"nuclei3d-{split}-z{s[0]:02d}", volume[s], label[s], list(s)) for s in slabs]

    return Corpus(
        name="nuclei-3d",
        description=(f"stardist's 3D fluorescence nuclei volume {'x'.join(map(str, volume.shape))} with its instance "
                     f"masks as foreground, axial slabs of {slab} slices as studies, every 3rd slab for testing, "
                     f"{guard}-slice guards"),
        train=studies(train_slabs, "train"),
        test=studies(test_slabs, "test"))
