"""The audit's test: is the suspect model's response to the key's mark larger than to control marks of the same kind?

Under the null hypothesis (the model was never trained on the key's mark) the key is one more draw of the same
random process as the controls, and the model cannot tell which mark is the key's: the marks' statistics are
exchangeable, the key's rank among them is uniform, and the p-value below is exact whatever the model, the images
or the number of probe studies. docs/audit.md says what that assumes and what it means.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict

import numpy as np


@dataclass(frozen=True)
class MarkTest:
    """The key's statistic among the controls' and the exact rank p-value."""

    p_value: float  # (1 + controls at or above the key) / marks: never below 1 / marks
    rank: int  # 1 = the key responded most
    marks: int  # the key and its controls
    studies: int
    key_statistic: float  # mean over studies of the key's standardised response
    effect_size: float  # the key's statistic in standard deviations of the controls'
    key_response: float  # mean raw response (share of the ROI segmented) to the key's probes
    control_response: float  # the same for the controls' probes

    def to_dict(self) -> Dict:
        return asdict(self)


def standardised(responses: np.ndarray) -> np.ndarray:
    """Each study's responses (column) centred on their mean over marks and divided by their standard deviation
    (0 where a study's responses are all equal): a symmetric function of the marks, so exchangeability holds."""
    centred = responses - responses.mean(axis=0, keepdims=True)
    spread = responses.std(axis=0, keepdims=True)
    return np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 0)


def mark_test(responses: np.ndarray, key_index: int) -> MarkTest:
    """The test on `responses` (marks, studies) with the key's row `key_index`; ties count against the key."""
    responses = np.asarray(responses, dtype=np.float64)
    if responses.ndim != 2 or responses.shape[0] < 2:
        raise ValueError("responses must be (marks >= 2, studies)")
    statistics = standardised(responses).mean(axis=1)
    key = statistics[key_index]
    controls = np.delete(statistics, key_index)
    at_or_above = int(np.count_nonzero(controls >= key))
    spread = float(controls.std(ddof=1)) if len(controls) > 1 else 0.0
    effect = (key - float(controls.mean())) / spread if spread > 0 else 0.0
    return MarkTest(p_value=(1 + at_or_above) / len(statistics), rank=1 + at_or_above, marks=len(statistics),
                    studies=responses.shape[1], key_statistic=float(key), effect_size=float(effect),
                    key_response=float(responses[key_index].mean()),
                    control_response=float(np.delete(responses, key_index, axis=0).mean()))
