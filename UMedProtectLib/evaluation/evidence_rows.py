"""The designs' evidence rows from an evaluation: every UMed method x threat x victim family, best seed against the
best seed of its clean twins, as the data file designs/measured.py reads.

    python -m UMedProtectLib.evaluation.evidence_rows EVALUATION_JSON SOURCE_DOC OUT_JSON
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List

from ..settings import ProtectSettings
from .config import UMED
from .umed import mode_and_design


def rows_from_results(results: Dict, source: str) -> List[Dict]:
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
                    rows.append({
                        "design": design, "augmentation": threat["augmentation"], "corpus": corpus,
                        "epsilon_255": method["epsilon_255"],
                        "epsilon_over_contrast": round(contrast, 3) if isinstance(contrast, float) else None,
                        "victims": f"{victim} x {len(summary['runs'])} seeds",
                        "clean_dsc": round(threat["clean"][victim]["best"], 3),
                        "protected_dsc": round(summary["best"], 3), "psnr_db": round(stats["psnr_db"], 1),
                        "source": source, "defence": threat.get("defence", "none")})
    return rows


def main(argv=None) -> int:
    """Write the rows of EVALUATION_JSON, citing SOURCE_DOC, to OUT_JSON."""
    evaluation, source, out = argv or sys.argv[1:]
    results = json.loads(Path(evaluation).read_text(encoding="utf-8"))
    Path(out).write_text(json.dumps({"from": Path(evaluation).name, "rows": rows_from_results(results, source)},
                                    indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
