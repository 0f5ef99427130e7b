"""Real noise: faint lesions of a controlled contrast inserted into the brain of a real head CT (corpus `ct-faint`).

The source is the head CT Debian ships in `invesalius-examples` (InVesalius's example project `Cranium.inv3`,
GPL-2): a gzipped tar whose main.plist describes the volume and whose matrix.dat holds it as raw int16 Hounsfield
units, 108 axial slices of 256x256 at 0.957 x 0.957 x 1.5 mm. Its images carry the scanner's own noise (correlated
by the reconstruction kernel) and anatomy; only the lesions are synthetic.

- Window: the soft-tissue window (L40 W400 of budget.WINDOW_PRESETS), -160..240 HU -> [0, 1], so a budget of
  4/255 is 6.3 HU; the brain's measured noise is about that budget (docs/results/ct-faint.md).
- Brain: per slice, the largest connected region of lightly smoothed HU in BRAIN_HU (brain and CSF inside the
  skull, 2 px eroded to cut it from the scalp, then grown back); the contiguous run of axial slices where it covers
  at least MIN_BRAIN_PIXELS is used, anterior at the top.
- Studies: that run cut into slabs of 10 slices (split.slab_split: every 4th slab a test slab, 1-slice guards, so
  training and test slices are at least 4.5 mm apart), each slab cut into tiles of 64x64 over the brain; a tile at
  least half brain through its slab is a study, a small volume of real anatomy.
- Lesions: 2-4 per study, rough 3D ellipsoids (in-plane radius 4-10 px, through-plane the same in mm), kept whole
  inside the brain, so they sit on real noise and anatomy. All lesions of a study are hypo-intense (even studies,
  group "hypo") or hyper-intense (odd, "hyper") by exactly `multiple` x epsilon in their core; the edge is a partial
  volume: the change follows a Gaussian-blurred step (sigma EDGE_SIGMA px) across the lesion's surface, and the
  label is where that step is at half or more.
- Range: every slice's first row is set to 0 and its last to 1 (as synth-faint; lesions keep 2 px from the edge),
  so the engine's normalisation leaves the images unchanged and the harness's budget means the same to the engine
  and the baselines.
"""

from __future__ import annotations

import functools
import plistlib
import tarfile
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from scipy import ndimage, special

from ...budget import reading_window
from ...errors import InputError
from ...method.intensity import IntensityScale
from .corpus import Corpus, Study
from .split import slab_split
from .synthetic import blob_distance

SOURCE = Path("/usr/share/doc/invesalius-examples/examples/Cranium.inv3")
INSTALL_HINT = "apt-get install invesalius-examples (Debian/Ubuntu)"
WINDOW = reading_window("soft-tissue", 0.0, 0.0)
BRAIN_HU = (-10.0, 70.0)
MIN_BRAIN_PIXELS = 6000
EDGE_SIGMA = 0.5  # px: the partial volume's blur; the change rises from 10 % to 90 % over 1.3 px
LESION_RADIUS = (4.0, 10.0)  # in-plane, px
EDGE_MARGIN = 2  # px kept free at the tile's edges: the pinned rows and the border
# px: what an in-plane Gaussian blur of this sigma removes counts as noise (as the noise-shortcut probes count it).
HIGH_PASS_SIGMA = 1.5


def head_ct() -> Tuple[np.ndarray, Tuple[float, float, float]]:
    """The volume in HU (z, y, x) float32, anterior at the top of each slice, and its spacing (z, y, x) in mm."""
    if not SOURCE.is_file():
        raise InputError(f"the ct-faint corpus needs the head CT of Debian's invesalius-examples at {SOURCE}: "
                         f"{INSTALL_HINT}")
    # Read as a stream, in one pass: main.plist comes first in the archive and names the volume's file, which
    # follows (a seek back in a gzip stream would decompress it again from the start).
    info, raw = None, None
    with tarfile.open(SOURCE, "r|gz") as archive:
        for member in archive:
            name = Path(member.name).name
            if name == "main.plist":
                info = plistlib.loads(archive.extractfile(member).read())
            elif info is not None and name == info["matrix"]["filename"]:
                raw = archive.extractfile(member).read()
                break
    if raw is None:
        raise InputError(f"{SOURCE} holds no InVesalius volume (main.plist and its matrix file)")
    matrix = info["matrix"]
    volume = np.frombuffer(raw, dtype=np.dtype(matrix["dtype"])).reshape(matrix["shape"])
    spacing_x, spacing_y, spacing_z = info["spacing"]
    return np.ascontiguousarray(volume[:, ::-1, :], dtype=np.float32), (spacing_z, spacing_y, spacing_x)


def brain_mask(hu: np.ndarray) -> np.ndarray:
    """Per slice, the largest connected region inside BRAIN_HU (brain and CSF): see the module's docstring."""
    smooth = ndimage.gaussian_filter(hu, (0, 1, 1))
    tissue = (smooth > BRAIN_HU[0]) & (smooth < BRAIN_HU[1])
    core = ndimage.binary_erosion(tissue, np.ones((1, 5, 5)))
    mask = np.zeros_like(tissue)
    for z in range(hu.shape[0]):
        regions, count = ndimage.label(core[z])
        if count:
            largest = regions == 1 + int(np.argmax(ndimage.sum(core[z], regions, range(1, count + 1))))
            mask[z] = ndimage.binary_dilation(largest, np.ones((5, 5))) & tissue[z]
    return mask


def windowed(hu: np.ndarray) -> np.ndarray:
    """HU -> [0, 1] through the soft-tissue window (clipped beyond it)."""
    return IntensityScale(WINDOW.low, WINDOW.high).normalise(hu)


def high_pass(image: np.ndarray, label: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Windowed slices (z, y, x) minus their in-plane Gaussian blur (HIGH_PASS_SIGMA), and where that residue is
    the CT's own noise: the brain's interior (BRAIN_HU, 4 px inside its edges), away from `label`'s lesions."""
    low, high = windowed(np.array(BRAIN_HU, np.float32))
    blurred = ndimage.gaussian_filter(image.astype(np.float64), (0, HIGH_PASS_SIGMA, HIGH_PASS_SIGMA))
    inside = ndimage.binary_erosion((blurred > low) & (blurred < high), np.ones((1, 9, 9)))
    if label is not None:
        inside &= ~ndimage.binary_dilation(label > 0, np.ones((1, 9, 9)))
    return image - blurred, inside


def brain_noise(image: np.ndarray, label: Optional[np.ndarray] = None) -> float:
    """The CT's own noise in windowed slices: the high-pass residue's std over the brain's interior."""
    residue, inside = high_pass(image, label)
    return float(residue[inside].std())


def insert_lesions(image: np.ndarray, brain: np.ndarray, rng: np.random.Generator, change: float,
                   spacing: Tuple[float, float, float]) -> Tuple[np.ndarray, np.ndarray]:
    """2-4 lesions inside `brain`, each adding `change` in its core through a partial-volume edge: (image, label)."""
    shape = image.shape
    allowed = ndimage.binary_erosion(brain, np.ones((1, 3, 3)))
    allowed[:, :EDGE_MARGIN + 1], allowed[:, -EDGE_MARGIN - 1:] = False, False
    allowed[:, :, :EDGE_MARGIN + 1], allowed[:, :, -EDGE_MARGIN - 1:] = False, False
    centres = np.argwhere(ndimage.binary_erosion(allowed, np.ones((1, 9, 9))))
    occupancy = np.zeros(shape, np.float32)
    label = np.zeros(shape, bool)
    for _ in range(int(rng.integers(2, 5))):
        for _attempt in range(30):
            if len(centres) == 0:
                break
            where = centres[rng.integers(len(centres))]
            radius = rng.uniform(*LESION_RADIUS)
            depth = radius * spacing[1] / spacing[0] * rng.uniform(0.8, 1.25)  # the same extent in mm
            distance = blob_distance(rng, shape, where, (depth, radius, radius * rng.uniform(0.75, 1.33)),
                                     rng.uniform(0, np.pi), 0.12, (1, 3, 3))
            # Signed distance to the surface in px, approximated by (1 - d) x the in-plane radius.
            step = special.ndtr((1.0 - distance) * radius / EDGE_SIGMA).astype(np.float32)
            if (distance < 1).any() and not (step > 0.01)[~allowed].any():
                occupancy = np.maximum(occupancy, step)
                label |= distance < 1
                break
    return (image + change * occupancy).astype(np.float32), label.astype(np.uint8)


def head_ct_slab(slices: int = 3, margin: int = 24) -> Tuple[np.ndarray, np.ndarray]:
    """`slices` slices around the head CT's largest brain section, cropped to the brain and `margin` pixels: its HU
    as the int16 the scanner stored, and the brain (uint8); a real CT study small enough for a quick protection."""
    hu, _ = head_ct()
    brain = brain_mask(hu)
    middle = int(np.argmax(brain.sum(axis=(1, 2))))
    ys, xs = np.nonzero(brain[middle])
    first = max(middle - slices // 2, 0)
    box = np.s_[first:first + slices, max(ys.min() - margin, 0):ys.max() + margin,
                max(xs.min() - margin, 0):xs.max() + margin]
    return np.round(hu[box]).astype(np.int16), brain[box].astype(np.uint8)


@functools.lru_cache(maxsize=1)
def brain_ct() -> Tuple[np.ndarray, np.ndarray, int, Tuple[float, float, float]]:
    """The head CT's brain slices: windowed (z, y, x), their brain mask, the first one's index in the volume and the
    spacing; the slices are the contiguous run around the largest brain section that hold MIN_BRAIN_PIXELS."""
    hu, spacing = head_ct()
    brain = brain_mask(hu)
    area = brain.reshape(len(brain), -1).sum(axis=1)
    first = last = int(np.argmax(area))
    while first > 0 and area[first - 1] >= MIN_BRAIN_PIXELS:
        first -= 1
    while last < len(area) and area[last] >= MIN_BRAIN_PIXELS:
        last += 1
    return windowed(hu[first:last]), brain[first:last], first, spacing


def _tiles(brain: np.ndarray, tile: int) -> List[Tuple[int, int]]:
    """Top-left corners of a grid of tile x tile squares centred on a slab's brain, those at least half brain."""
    ys, xs = np.nonzero(brain.any(axis=0))
    grid = []
    for low, high, extent in ((ys.min(), ys.max() + 1, brain.shape[1]), (xs.min(), xs.max() + 1, brain.shape[2])):
        count = max(1, round((high - low) / tile))
        start = int(np.clip((low + high) // 2 - count * tile // 2, 0, extent - count * tile))
        grid.append(range(start, start + count * tile, tile))
    return [(y, x) for y in grid[0] for x in grid[1] if brain[:, y:y + tile, x:x + tile].mean() >= 0.5]


def ct_faint_corpus(multiple: float = 2.5, epsilon: float = 4 / 255, slab: int = 10, guard: int = 1,
                    tile: int = 64, seed: int = 2024) -> Corpus:
    """The harness's corpus `ct-faint`: lesions of contrast `multiple` x `epsilon` (the designs' regime is 1-4;
    0 leaves the CT unchanged under the same labels) in tiles of the head CT's brain, split by slab."""
    if multiple < 0:
        raise ValueError(f"the lesions' contrast multiple must be >= 0, got {multiple:g}")
    image, brain, first, spacing = brain_ct()
    train_slabs, test_slabs = slab_split(len(image), slab, test_every=4, guard=guard, offset=1)

    def studies(slabs: List[List[int]], split: str) -> List[Study]:
        out = []
        for indices in slabs:
            z = [first + i for i in indices]
            for y, x in _tiles(brain[indices], tile):
                # The study's own generator: its lesions do not depend on which studies came before.
                rng = np.random.default_rng([seed, z[0], y, x])
                sign = -1.0 if len(out) % 2 == 0 else 1.0
                window = (indices, slice(y, y + tile), slice(x, x + tile))
                lesioned, label = insert_lesions(image[window], brain[window], rng, sign * multiple * epsilon,
                                                 spacing)
                lesioned[:, 0], lesioned[:, -1] = 0.0, 1.0
                out.append(Study(f"ct-faint-{split}-z{z[0]:03d}-y{y:03d}-x{x:03d}", np.clip(lesioned, 0.0, 1.0),
                                 label, z, group="hypo" if sign < 0 else "hyper"))
        return out

    return Corpus(
        name="ct-faint",
        description=(f"faint lesions of contrast {multiple:g}x epsilon ({epsilon * 255:g}/255, "
                     f"{multiple * epsilon * WINDOW.width:.3g} HU) with a partial-volume edge in the brain of a real "
                     f"head CT (Debian's invesalius-examples), {WINDOW.describe()}, {tile}x{tile} tiles through "
                     f"slabs of {slab} slices split with {guard}-slice guards, range pinned at 0 and 1 by two rows"),
        train=studies(train_slabs, "train"), test=studies(test_slabs, "test"))
