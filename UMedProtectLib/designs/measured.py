"""Measured rows kept as data: the JSON files in designs/measured/, each written from an evaluation.json by
`python -m UMedProtectLib.evaluation.evidence_rows` (never typed in by hand)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Tuple

from .evidence import Measurement

FOLDER = Path(__file__).with_name("measured")


def measured_rows(design_name: str) -> Tuple[Measurement, ...]:
    """Every row of the data files that belongs to `design_name`, in file order."""
    rows = []
    for path in sorted(FOLDER.glob("*.json")):
        for row in json.loads(path.read_text(encoding="utf-8"))["rows"]:
            if row["design"] == design_name:
                rows.append(Measurement(**{k: v for k, v in row.items() if k != "design"}))
    return tuple(rows)
