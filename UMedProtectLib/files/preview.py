"""A PNG that shows original, protected and difference side by side for the middle slice of the ROI.

The first row shows the original with the ROI's outline, the protected slice and the difference (the ROI outlined
on it too, so that a change can be placed on the anatomy), the two images in the reading window of the report (the
robust intensity range unless the user named another or the default budget took a CT's standard window), so that
what the user previews is what they will see. The difference uses a symmetric blue-white-red scale whose ends are
-epsilon_native and +epsilon_native, drawn as a colour bar under it with its unit (HU for a CT in HU): the budget
fills the whole colour range, which amplifies the perturbation by the window's width over the budget, a factor the
caption writes out ("shown x64"). The protected slice's caption says in words whether the ROI and its edge band
look smoother or rougher than the original (the report's texture ratios, flagged beyond the factor the report
warns at). A second row shows the protected slice in each further window the caller names (for a CT: the standard
windows that show the ROI's tissue). Slices are shown in radiological orientation when the image is axial
(anterior up, the patient's left on the right), with the voxel aspect ratio.
"""

from __future__ import annotations

import io
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from ..method.measures.texture_change import VISIBLE_TEXTURE_FACTOR

PANEL_MIN_WIDTH = 320
CAPTION_LINE = 14
# Up to four caption lines over a panel: the protected one's title, window and the ROI's and band's texture.
CAPTION_HEIGHT = 4 * CAPTION_LINE + 6
GAP = 8
# The colour bar under the difference: a strip of the colour scale and a line of its values.
BAR_HEIGHT = 10
BAR_STRIP = BAR_HEIGHT + CAPTION_LINE + 6
OUTLINE = (255, 215, 0)


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


def _outline(mask: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """The one-pixel inner boundary of a 2D mask shown at `size` (width, height)."""
    shown = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 0
    return shown & ~ndimage.binary_erosion(shown)


def difference_caption(budget: float, share: float, unit: str) -> Tuple[str, str]:
    """The difference panel's caption: the amplification written out, and what fills the colour range."""
    return (f"Difference shown x{1 / max(share, 1e-12):.0f}, ROI outlined",
            f"(the budget {budget:.3g} {unit}, {100 * share:.2g}% of the window, at full colour)")


def texture_lines(texture: Optional[Dict[str, float]] = None) -> Tuple[str, ...]:
    """The ROI's and band's local noise after / before (the report's `texture`) in words: PSNR does not show a
    smoother or rougher ROI, so the preview says it, with the figure; "looks" only beyond the factor the report
    warns at."""
    lines = []
    for where, key in (("ROI", "roi_texture_ratio"), ("edge band", "band_texture_ratio")):
        ratio = (texture or {}).get(key, float("nan"))
        if not np.isfinite(ratio):
            continue
        if 1 / VISIBLE_TEXTURE_FACTOR <= ratio <= VISIBLE_TEXTURE_FACTOR:
            lines.append(f"{where} texture close to the original: noise x{ratio:.2f}")
        else:
            lines.append(f"{where} looks {'smoother' if ratio < 1 else 'rougher'} than the original: noise "
                         f"x{ratio:.2f}")
    return tuple(lines)


def bar_labels(bound: float, unit: str) -> Tuple[str, str, str]:
    """What the colour bar writes under its left end, middle and right end."""
    return f"-{bound:.3g} {unit}", "0", f"+{bound:.3g} {unit}"


def render_preview(original: np.ndarray, protected: np.ndarray, roi: np.ndarray, epsilon_native: float,
                   window: Optional[Sequence[float]] = None, spacing: Optional[Sequence[float]] = None,
                   direction: Optional[Sequence[float]] = None, window_name: str = "",
                   more_windows: Sequence[Tuple[str, float, float]] = (),
                   texture: Optional[Dict[str, float]] = None, unit: str = "units") -> Image.Image:
    """The preview of volumes in (z, y, x); `window` is (low, high) in native units (default: the slice's 0.5-99.5
    percentiles); `more_windows` are (name, low, high) to show the protected slice in as well; `spacing` and
    `direction` in SimpleITK (x, y, z) order; `texture` the report's texture ratios, written over the protected
    slice in words; `unit` the image's unit ("HU" for a CT in HU), written on the colour bar."""
    original, protected = np.asarray(original), np.asarray(protected)
    z = middle_roi_slice(np.asarray(roi))
    orientation = _display_orientation(direction)
    before = _orient(original[z], orientation)
    after = _orient(protected[z], orientation)
    mask = _orient(np.asarray(roi)[z], orientation)
    difference = after.astype(np.float64) - before.astype(np.float64)
    if window is not None:
        low, high = float(window[0]), float(window[1])
    else:
        low, high = (float(v) for v in np.percentile(original[z], (0.5, 99.5)))
    # Physical aspect: a pixel is spacing_x wide and spacing_y high (swapped when the display transposes).
    sx, sy = (float(spacing[0]), float(spacing[1])) if spacing is not None else (1.0, 1.0)
    if orientation[0]:
        sx, sy = sy, sx
    rows, columns = before.shape
    scale = max(1.0, PANEL_MIN_WIDTH / columns)
    size = (int(round(columns * scale)), max(1, int(round(rows * scale * sy / sx))))

    def grey(plane: np.ndarray, lowest: float, highest: float) -> Image.Image:
        values = _grey(plane, lowest, highest)
        return Image.fromarray(np.stack([values] * 3, axis=-1), "RGB").resize(size, Image.NEAREST)

    outline = _outline(mask, size)
    outlined = np.array(grey(before, low, high))
    outlined[outline] = OUTLINE
    change = np.array(Image.fromarray(_blue_white_red(difference, epsilon_native), "RGB").resize(size, Image.NEAREST))
    change[outline] = OUTLINE
    share = epsilon_native / max(high - low, 1e-12)
    shown = f"{window_name + ' ' if window_name else ''}window L{(low + high) / 2:.4g} W{high - low:.4g}"
    top = [(Image.fromarray(outlined), (f"Original (slice {z}), ROI outlined", shown)),
           (grey(after, low, high), ("Protected", shown, *texture_lines(texture))),
           (Image.fromarray(change), difference_caption(epsilon_native, share, unit))]
    bottom = [(grey(after, lowest, highest), (f"Protected, {name} window", f"L{(lowest + highest) / 2:.4g} "
                                              f"W{highest - lowest:.4g}")) for name, lowest, highest in more_windows]
    row_height = CAPTION_HEIGHT + size[1]
    columns_shown = max(len(top), len(bottom))
    height = GAP + row_height + BAR_STRIP + (row_height + GAP if bottom else 0)
    sheet = Image.new("RGB", (columns_shown * (size[0] + GAP) + GAP, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, panels in enumerate((top, bottom)):
        y = row * (row_height + BAR_STRIP + GAP)
        for index, (panel, caption) in enumerate(panels):
            left = GAP + index * (size[0] + GAP)
            sheet.paste(panel, (left, y + CAPTION_HEIGHT))
            for line, text in enumerate(caption):
                draw.text((left, y + 4 + line * CAPTION_LINE), text, fill=(235, 235, 235), font=font)
    _colour_bar(sheet, draw, font, GAP + 2 * (size[0] + GAP), row_height + 4, size[0], epsilon_native, unit)
    return sheet


def _colour_bar(sheet: Image.Image, draw: ImageDraw.ImageDraw, font, left: int, top: int, width: int,
                bound: float, unit: str) -> None:
    """The difference's colour scale from -bound to +bound, with its ends (and their unit) and middle under it."""
    ramp = _blue_white_red(np.linspace(-bound, bound, width)[None, :].repeat(BAR_HEIGHT, axis=0), bound)
    sheet.paste(Image.fromarray(ramp, "RGB"), (left, top))
    low, middle, high = bar_labels(bound, unit)
    for text, x in ((low, left), (middle, left + width // 2 - 3), (high, left + width - 6 * len(high))):
        draw.text((x, top + BAR_HEIGHT + 2), text, fill=(235, 235, 235), font=font)


def further_windows(report: dict) -> List[Tuple[str, float, float]]:
    """(name, low, high) of the standard windows that show the ROI's tissue, other than the report's reading window."""
    covering = (report.get("reading") or {}).get("covering_windows") or []
    reading = report["visibility"]["window"]["name"]
    return [(seen["window"]["name"], seen["window"]["low"], seen["window"]["high"])
            for seen in report.get("standard_windows") or []
            if seen["window"]["name"] in covering and seen["window"]["name"] != reading]


def preview_png(*args, **kwargs) -> bytes:
    """render_preview(...) encoded as PNG bytes (for an all-or-nothing write with the other outputs)."""
    buffer = io.BytesIO()
    render_preview(*args, **kwargs).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
