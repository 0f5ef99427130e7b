"""A PNG that shows original, protected and difference side by side for the middle slice of the ROI.

The two images are shown in the reading window of the report (the robust intensity range unless the user named
another), so that what the user previews is what they will see. The difference uses a symmetric
blue-white-red scale whose ends are -epsilon_native and +epsilon_native: the budget fills the whole colour
range, which amplifies the perturbation far beyond what the grey window can show. Slices are shown in
radiological orientation when the image is axial (anterior up, the patient's left on the right), with the
voxel aspect ratio.
"""

from __future__ import annotations

import io
from typing import Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL_MIN_WIDTH = 320
CAPTION_HEIGHT = 34
CAPTION_LINE = 14


def middle_roi_slice(roi: np.ndarray) -> int:
    """The middle one of the axial slices (axis 0) that contain ROI voxels (the middle slice if none do)."""
    slices = np.flatnonzero(np.asarray(roi).reshape(roi.shape[0], -1).any(axis=1))
    return int(slices[len(slices) // 2]) if slices.size else roi.shape[0] // 2


def _display_orientation(direction: Optional[Sequence[float]]) -> Tuple[bool, bool, bool]:
    """(transpose, flip rows, flip columns) that show an axial slice with +x (L) right and +y (P) down."""
    if direction is None or len(direction) != 9:
        return False, False, False
    matrix = np.reshape(direction, (3, 3))  # columns: physical directions of the i (column) and j (row) axes
    column_axis, row_axis = int(np.argmax(np.abs(matrix[:, 0]))), int(np.argmax(np.abs(matrix[:, 1])))
    if {column_axis, row_axis} != {0, 1}:
        return False, False, False  # not an axial acquisition: show the voxel grid as stored
    transpose = column_axis == 1
    shown_columns, shown_rows = (matrix[:, 1], matrix[:, 0]) if transpose else (matrix[:, 0], matrix[:, 1])
    return transpose, bool(shown_rows[1] < 0), bool(shown_columns[0] < 0)


def _orient(plane: np.ndarray, orientation: Tuple[bool, bool, bool]) -> np.ndarray:
    """Apply a display orientation to a 2D array."""
    transpose, flip_rows, flip_columns = orientation
    plane = plane.T if transpose else plane
    plane = plane[::-1] if flip_rows else plane
    return plane[:, ::-1] if flip_columns else plane


def _grey(plane: np.ndarray, low: float, high: float) -> np.ndarray:
    """8-bit grey values of a slice in the window [low, high]."""
    scaled = (plane.astype(np.float64) - low) / max(high - low, 1e-12)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def _blue_white_red(difference: np.ndarray, bound: float) -> np.ndarray:
    """RGB of a signed difference: blue at -bound, white at 0, red at +bound (clipped beyond)."""
    t = np.clip(difference.astype(np.float64) / max(bound, 1e-12), -1.0, 1.0)
    fade = np.round(255 * (1.0 - np.abs(t))).astype(np.uint8)
    full = np.full(t.shape, 255, np.uint8)
    red = np.where(t < 0, fade, full)
    blue = np.where(t > 0, fade, full)
    return np.stack([red, fade, blue], axis=-1)


def render_preview(original: np.ndarray, protected: np.ndarray, roi: np.ndarray, epsilon_native: float,
                   window: Optional[Sequence[float]] = None, spacing: Optional[Sequence[float]] = None,
                   direction: Optional[Sequence[float]] = None, window_name: str = "") -> Image.Image:
    """The three-panel preview of volumes in (z, y, x); `window` is (low, high) in native units (default: the
    slice's 0.5-99.5 percentiles); `spacing` and `direction` in SimpleITK (x, y, z) order."""
    original, protected = np.asarray(original), np.asarray(protected)
    z = middle_roi_slice(np.asarray(roi))
    orientation = _display_orientation(direction)
    before = _orient(original[z], orientation)
    after = _orient(protected[z], orientation)
    difference = after.astype(np.float64) - before.astype(np.float64)
    if window is not None:
        low, high = float(window[0]), float(window[1])
    else:
        low, high = (float(v) for v in np.percentile(original[z], (0.5, 99.5)))
    panels = [np.stack([_grey(before, low, high)] * 3, axis=-1), np.stack([_grey(after, low, high)] * 3, axis=-1),
              _blue_white_red(difference, epsilon_native)]
    # Physical aspect: a pixel is spacing_x wide and spacing_y high (swapped when the display transposes).
    sx, sy = (float(spacing[0]), float(spacing[1])) if spacing is not None else (1.0, 1.0)
    if orientation[0]:
        sx, sy = sy, sx
    rows, columns = before.shape
    scale = max(1.0, PANEL_MIN_WIDTH / columns)
    size = (int(round(columns * scale)), max(1, int(round(rows * scale * sy / sx))))
    share = epsilon_native / max(high - low, 1e-12)
    shown = f"{window_name + ' ' if window_name else ''}window L{(low + high) / 2:.4g} W{high - low:.4g}"
    captions = [(f"Original (slice {z})", shown), ("Protected", shown),
                (f"Difference: blue -{epsilon_native:.3g}, red +{epsilon_native:.3g}",
                 f"= the budget, {100 * share:.2g}% of the window (x{1 / max(share, 1e-12):.0f})")]
    gap = 8
    sheet = Image.new("RGB", (3 * size[0] + 4 * gap, size[1] + CAPTION_HEIGHT + gap), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for index, (panel, caption) in enumerate(zip(panels, captions)):
        left = gap + index * (size[0] + gap)
        sheet.paste(Image.fromarray(np.ascontiguousarray(panel), "RGB").resize(size, Image.NEAREST),
                    (left, CAPTION_HEIGHT))
        for line, text in enumerate(caption):
            draw.text((left, 4 + line * CAPTION_LINE), text, fill=(235, 235, 235), font=font)
    return sheet


def preview_png(*args, **kwargs) -> bytes:
    """render_preview(...) encoded as PNG bytes (for an all-or-nothing write with the other outputs)."""
    buffer = io.BytesIO()
    render_preview(*args, **kwargs).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
