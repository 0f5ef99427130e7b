"""The designs' evidence rows from an evaluation: every UMed method x threat x victim family, best seed against the
best seed of its clean twins, as the data file designs/measured.py reads.

    python -m UMedProtectLib.evaluation.evidence_rows EVALUATION_JSON SOURCE_DOC OUT_JSON \
        --commit SHA --machine "2 CPU cores shared with other jobs" --date YYYY-MM-DD
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List

from ..designs.evidence import Measurement
from ..designs.measured import row_dict
from ..files.transaction import OutputTransaction
from ..settings import ProtectSettings
from .config import UMED
from .umed import mode_and_design


def rows_from_results(results: Dict, source: str, commit: str, machine: str, date: str) -> List[Dict]:
    """One row per (corpus, threat, UMed method, victim) of an evaluation's results."""
    default_design = ProtectSettings().design
    rows = []
    for corpus, by_threat in results["corpora"].items():
        for threat in by_threat["augmentation"].values():
            for method in threat["methods"]:
                if method["method"] not in UMED:
                    continue
                design = mode_and_design(method["method"])[1] or default_design
                stats = method["stats"]
                contrast = stats.get("linf_over_contrast")
                for victim, summary in method["victims"].items():
                    seeds = len(summary["runs"])
                    rows.append(row_dict(design, Measurement(
                        augmentation=threat["augmentation"], corpus=corpus, epsilon_255=method["epsilon_255"],
                        epsilon_over_contrast=round(contrast, 3) if isinstance(contrast, float) else None,
                        victims=f"{victim} x {seeds} seeds", clean_dsc=round(threat["clean"][victim]["best"], 3),
                        protected_dsc=round(summary["best"], 3), psnr_db=round(stats["psnr_db"], 1), source=source,
                        defence=threat.get("defence", "none"), seeds=seeds, commit=commit, machine=machine,
                        date=date)))
    return rows


def main(argv=None) -> int:
    """Write the rows of EVALUATION_JSON, citing SOURCE_DOC, to OUT_JSON."""
    parser = argparse.ArgumentParser(prog="python -m UMedProtectLib.evaluation.evidence_rows", description=main.__doc__)
    parser.add_argument("evaluation", type=Path, help="the evaluation.json of `umed-protect evaluate`")
    parser.add_argument("source", help="the docs page with the run's command, e.g. docs/results/attacker-tools.md")
    parser.add_argument("out", type=Path, help="the data file to write, designs/measured/<study>.json")
    parser.add_argument("--commit", required=True, help="the commit of the code that ran the evaluation")
    parser.add_argument("--machine", required=True, help="where it ran, as the docs page states it")
    parser.add_argument("--date", required=True, help="the day it ran, YYYY-MM-DD")
    args = parser.parse_args(argv)
    results = json.loads(args.evaluation.read_text(encoding="utf-8"))
    origin = f"written by UMedProtectLib.evaluation.evidence_rows from {args.evaluation.name}"
    rows = rows_from_results(results, args.source, args.commit, args.machine, args.date)
    with OutputTransaction(keep_intact=[args.evaluation]) as transaction:
        transaction.stage(args.out).write_text(json.dumps({"origin": origin, "rows": rows}, indent=1) + "\n",
                                               encoding="utf-8")
        transaction.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
