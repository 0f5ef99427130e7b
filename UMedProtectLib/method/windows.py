"""Cut a volume into per-slice windows around the ROI, so that the cost grows with the ROI, not the volume."""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from .intensity import IntensityScale
from .masks import band_and_interior

# Window sides are multiples of this, so that the encoder-decoders can pool and upsample them exactly.
SIDE_MULTIPLE = 8


@dataclass
class Window:
    """One axial slice's ROI window: where it lies in the volume and what the networks see there."""

    z: int
    y0: int
    x0: int
    valid: Tuple[int, int]  # rows and columns that lie inside the image (the rest is edge padding)
    image: np.ndarray  # normalised intensities in [0, 1], float32
    classes: np.ndarray  # 0 = background, k = k-th chosen label, int64
    band: np.ndarray  # contour band, bool
    interior: np.ndarray  # ROI minus band, bool


def _axis_span(low: int, high: int, size: int, margin: int) -> Tuple[int, int]:
    """Start and length of a window covering [low, high) plus margin, rounded up, kept inside the axis if it fits."""
    need = high - low + 2 * margin
    length = -(-need // SIDE_MULTIPLE) * SIDE_MULTIPLE
    if length >= size:
        return 0, length
    start = min(max(low - margin - (length - need) // 2, 0), size - length)
    return start, length


def _cut(plane: np.ndarray, y0: int, x0: int, height: int, width: int, mode: str) -> np.ndarray:
    piece = plane[y0:y0 + height, x0:x0 + width]
    pad = ((0, height - piece.shape[0]), (0, width - piece.shape[1]))
    return np.pad(piece, pad, mode=mode) if any(p[1] for p in pad) else piece.copy()


def class_map(label: np.ndarray, labels: Sequence[int]) -> np.ndarray:
    """Label values -> class indices 1..K in the order given; everything else 0."""
    classes = np.zeros(label.shape, dtype=np.int64)
    for index, value in enumerate(labels, start=1):
        classes[label == value] = index
    return classes


def roi_slices(label: np.ndarray, labels: Sequence[int]) -> List[int]:
    """Indices of the axial slices that contain any chosen label."""
    present = np.isin(label, labels).reshape(label.shape[0], -1).any(axis=1)
    return [int(z) for z in np.flatnonzero(present)]


def build_windows(image: np.ndarray, label: np.ndarray, labels: Sequence[int], scale: IntensityScale,
                  band_width: int, margin: int, whole_roi_inside: bool = False) -> List[Window]:
    """One window per ROI slice, covering ROI + band + margin (masks as in masks.band_and_interior)."""
    windows = []
    for z in roi_slices(label, labels):
        classes = class_map(label[z], labels)
        band, interior = band_and_interior(classes > 0, band_width, whole_roi_inside)
        rows = np.flatnonzero((band | interior).any(axis=1))
        cols = np.flatnonzero((band | interior).any(axis=0))
        y0, height = _axis_span(rows[0], rows[-1] + 1, image.shape[1], margin)
        x0, width = _axis_span(cols[0], cols[-1] + 1, image.shape[2], margin)
        normalised = scale.normalise(_cut(image[z], y0, x0, height, width, "edge"))
        windows.append(Window(
            z=z, y0=y0, x0=x0,
            valid=(min(height, image.shape[1] - y0), min(width, image.shape[2] - x0)),
            image=normalised,
            classes=_cut(classes, y0, x0, height, width, "constant"),
            band=_cut(band, y0, x0, height, width, "constant"),
            interior=_cut(interior, y0, x0, height, width, "constant"),
        ))
    return windows
