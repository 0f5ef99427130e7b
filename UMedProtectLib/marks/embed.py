"""The mark as a change of a study: the key's pattern inside the ROI, nothing elsewhere."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np

from ..method.masks import roi_and_band
from . import DEFAULT_MARK, MARKS
from .key import OwnerKey
from .mark import TILE, Mark

BAND_WIDTH = 3  # voxels: the engine's default contour band
# Beside a protection design the two share the budget equally, so their sum stays within it.
MARK_SHARE = 0.5


@dataclass(frozen=True)
class Marking:
    """A key's mark to embed in a study: the key and the kind of mark (a name in MARKS)."""

    key: OwnerKey
    kind: str = DEFAULT_MARK

    def budget_share(self, design_changes: bool) -> float:
        """The share of the budget the mark takes: half beside a design's change, all of it alone."""
        return MARK_SHARE if design_changes else 1.0

    def pattern(self, study: np.ndarray) -> np.ndarray:
        """The key's pattern over the slices of `study` (z, y, x) at the study's secret offset."""
        return MARKS[self.kind].pattern(self.key.seed("mark"), study.shape[-2:], study_offset(self.key, study))

    def report(self, amplitude: float, amplitude_native: float, share: float) -> Dict:
        """The report's `mark` entry: the key only by its fingerprint."""
        return {"fingerprint": self.key.fingerprint, "kind": self.kind, "budget_share": share,
                "amplitude": amplitude, "amplitude_native": amplitude_native}


def study_offset(key: OwnerKey, study: np.ndarray) -> Tuple[int, int]:
    """The secret shift of the key's tile in one study, drawn from the key and the study's voxels: the same study is
    marked alike twice, while an attacker who knows the method cannot line the studies up to average the mark out
    (measured: with one offset for all, averaging the signed detail of the marked slices recovers most of it)."""
    digest = hashlib.sha256(np.ascontiguousarray(study).tobytes()).hexdigest()
    return divmod(key.seed(f"offset/{digest}") % (TILE * TILE), TILE)


def outer_band(roi: np.ndarray, band_width: int) -> np.ndarray:
    """The voxels within `band_width` outside the ROI's edge, per axial slice."""
    return roi_and_band(roi, band_width) & ~roi


def contour_sign(roi: np.ndarray, band_width: int = BAND_WIDTH) -> np.ndarray:
    """+1 on the ROI, -1 on its outer band, 0 elsewhere (float64): the sign the mark's pattern takes there."""
    return roi.astype(np.float64) - outer_band(roi, band_width)


def mark_change(mark: Mark, seed: int, roi: np.ndarray, amplitude: float, band_width: int = BAND_WIDTH,
                offset: Tuple[int, int] = (0, 0)) -> np.ndarray:
    """float64 change of a (z, y, x) study: `amplitude` x the mark's pattern (its tile shifted by `offset`) on the
    ROI's voxels and its negative on the outer band, 0 elsewhere.

    The negative outside is what makes a network learn this pattern and not any pattern of its kind: a pattern only
    inside is told from the background by its mere presence (measured: victims then answer every control mark as
    they answer the key's), while +pattern inside against -pattern just outside is told apart only by a filter
    matched to the pattern itself, at the contour, where segmentation is decided."""
    pattern = mark.pattern(seed, roi.shape[-2:], offset).astype(np.float64)
    return amplitude * contour_sign(roi, band_width) * pattern


def faded(image: np.ndarray, roi: np.ndarray, fade: float, ring: int = 3) -> np.ndarray:
    """`image` (float, z, y, x) with each slice's ROI moved towards its surroundings: the ROI's mean contrast with
    a ring of `ring` voxels around it is multiplied by `fade` (0 = no contrast left), its texture kept.

    A probe the model finds hard is where a learnt mark tips its answer: a fully visible target is segmented
    whatever the mark."""
    from scipy import ndimage

    out = image.astype(np.float64).copy()
    for z in range(image.shape[0]):
        inside = roi[z]
        if not inside.any():
            continue
        around = ndimage.binary_dilation(inside, iterations=ring) & ~inside
        if not around.any():
            continue
        contrast = out[z][inside].mean() - out[z][around].mean()
        out[z][inside] -= (1.0 - fade) * contrast
    return out


def roi_response(prediction: np.ndarray, roi: np.ndarray, band_width: int = BAND_WIDTH) -> float:
    """What the audit reads from a suspect's label map: the voxels it labels (any label > 0) inside the ROI minus
    those in the outer band, per voxel of the ROI; a model that learnt the mark moves its contour towards the ROI's."""
    labelled = prediction > 0
    inside = np.count_nonzero(labelled & roi)
    outside = np.count_nonzero(labelled & outer_band(roi, band_width))
    return float(inside - outside) / max(int(np.count_nonzero(roi)), 1)
