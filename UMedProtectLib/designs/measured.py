"""Measured rows kept as data: one JSON file per study in designs/measured/, named after its page in docs/results/.
Each file's `origin` says how its rows came: written from an evaluation.json by
`python -m UMedProtectLib.evaluation.evidence_rows`, or transcribed from a run whose raw output was not kept."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Dict, Tuple

from .evidence import Measurement

FOLDER = Path(__file__).with_name("measured")
ROW_KEYS = {"design"} | {field.name for field in fields(Measurement)}


def study_rows(path: Path) -> Tuple[Tuple[str, Measurement], ...]:
    """The (design, row) pairs of one study's file; a row whose keys are not exactly ROW_KEYS is refused."""
    rows = []
    for row in json.loads(path.read_text(encoding="utf-8"))["rows"]:
        if set(row) != ROW_KEYS:
            raise ValueError(f"{path.name}: a row's keys differ from the row format by {sorted(set(row) ^ ROW_KEYS)}")
        rows.append((row["design"], Measurement(**{k: v for k, v in row.items() if k != "design"})))
    return tuple(rows)


def measured_rows(design_name: str) -> Tuple[Measurement, ...]:
    """Every row of the data files that belongs to `design_name`, in file order."""
    return tuple(row for path in sorted(FOLDER.glob("*.json")) for design, row in study_rows(path)
                 if design == design_name)


def row_dict(design_name: str, row: Measurement) -> Dict:
    """One row as the data files hold it."""
    return {"design": design_name, **{field.name: getattr(row, field.name) for field in fields(Measurement)}}
