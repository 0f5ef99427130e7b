"""Probe studies: held-out studies with the ROI faded and the key's or a control's mark stamped on it, in a secret
order that only the key recovers."""

from __future__ import annotations

from typing import List, Tuple


from .key import OwnerKey

# The ROI keeps half its contrast in a probe: hard enough that a learnt mark changes the answer, visible enough
# that a model that learnt the anatomy still answers (docs/audit.md, measured).
DEFAULT_FADE = 0.5
# The probes carry the mark stronger than the marked studies: a filter the model learnt answers in proportion, and the
# controls are stamped alike, so the test stays exact (the probes are never shared as data).
DEFAULT_PROBE_GAIN = 1.0
DEFAULT_CONTROLS = 99  # with the key, 100 marks: the smallest p-value is 0.01


def mark_seeds(key: OwnerKey, nonce: str, controls: int) -> Tuple[List[int], int]:
    """The pattern seeds of the key's mark and `controls` control marks in the order the probes use, and the key's
    position in it. The key's own pattern is the one it marks studies with; the controls and the order come from
    the audit's nonce, so one key can run many audits whose controls differ."""
    seeds = [key.seed(f"control/{nonce}/{index}") for index in range(controls)]
    position = key.seed(f"position/{nonce}") % (controls + 1)
    seeds.insert(position, key.seed("mark"))
    return seeds, position
