"""The audit's verdict for a person: one paragraph, the JSON report and a plot of the key against its controls."""

from __future__ import annotations

import io
from typing import Dict

import numpy as np
from PIL import Image, ImageDraw

from .statistics import MarkTest, standardised

ALPHA = 0.01


def verdict_paragraph(test: MarkTest, alpha: float = ALPHA) -> str:
    """What the test says and does not say, in plain words."""
    head = (f"The suspect model labelled a net {test.key_response:.1%} of the ROI (inside it, less what it labelled "
            f"just outside) on the probes carrying the key's mark and {test.control_response:.1%} on those carrying "
            f"{test.marks - 1} control marks of the same kind; "
            f"the key ranked {test.rank} of {test.marks} (effect size {test.effect_size:+.2f} standard deviations "
            f"of the controls), p = {test.p_value:.4g}.")
    if test.p_value <= alpha:
        return (f"{head} At the significance level {alpha:g} this rejects the hypothesis that the model was never "
                f"trained on studies carrying this key's mark: a model that never saw the mark ranks the key this "
                f"high with probability at most {test.p_value:.4g}, whatever the model. It does not say how many "
                f"marked studies it was trained on, nor who trained it.")
    smallest = 1 / test.marks
    return (f"{head} This is not evidence of training on the key's mark at the level {alpha:g}. It does not show "
            f"that the model was not trained on it: a mark can be missed (too few marked studies, preprocessing that "
            f"removes it, too few probes" + (f"; with {test.marks} marks no p-value can fall below {smallest:.3g}"
                                              if smallest > alpha else "") + ").")


def verdict_png(responses: np.ndarray, key_index: int, width: int = 480, height: int = 240) -> bytes:
    """A histogram of the control marks' statistics with the key's as a red line (PNG bytes)."""
    statistics = standardised(responses).mean(axis=1)
    controls = np.delete(statistics, key_index)
    low, high = float(min(statistics.min(), -1.0)), float(max(statistics.max(), 1.0))
    bins = np.linspace(low, high, 31)
    counts, _ = np.histogram(controls, bins)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    left, right, top, bottom = 20, width - 20, 30, height - 30
    tallest = max(int(counts.max()), 1)
    bar = (right - left) / len(counts)
    for index, count in enumerate(counts):
        x0 = left + index * bar
        draw.rectangle([x0 + 1, bottom - (bottom - top) * count / tallest, x0 + bar - 1, bottom], fill=(150, 150, 150))
    x_key = left + (right - left) * (statistics[key_index] - low) / (high - low)
    draw.line([x_key, top - 10, x_key, bottom], fill=(200, 0, 0), width=3)
    draw.line([left, bottom, right, bottom], fill="black")
    draw.text((left, 5), "grey: control marks, red: the key (mean standardised response)", fill="black")
    draw.text((left, bottom + 8), f"{low:.2f}", fill="black")
    draw.text((right - 30, bottom + 8), f"{high:.2f}", fill="black")
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue()


def verdict_report(test: MarkTest, fingerprint: str, mark: str, alpha: float = ALPHA) -> Dict:
    """The JSON report of a verdict (the key itself never appears in it)."""
    return {"fingerprint": fingerprint, "mark": mark, "alpha": alpha, "rejected": test.p_value <= alpha,
            "test": test.to_dict(), "verdict": verdict_paragraph(test, alpha),
            "method": "exact rank test of the key's mean standardised response among its control marks "
                      "(docs/audit.md)"}
