"""Python API: run an evaluation and write its JSON, Markdown table and PNG figure into a folder, all or nothing.

The JSON is written by the engine's report writer: strict JSON, where a non-finite number (an infinite PSNR, a
ratio to a zero noise level) is null.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, Optional

from ..files.reports import report_json
from ..files.transaction import OutputTransaction
from ..progress import CancelFlag, ProgressCallback
from .config import EvaluationConfig
from .figure import save_figure
from .harness import evaluate
from .table import markdown_report

OUTPUT_NAMES = {"json": "evaluation.json", "markdown": "evaluation.md", "figure": "evaluation.png"}


def _drop_figure_arrays(results: Dict) -> None:
    """Remove the arrays the figure was drawn from (each level's "_figure"); the numbers stay."""
    for by_level in results["corpora"].values():
        for result in by_level["augmentation"].values():
            del result["_figure"]


def run_evaluation(config: EvaluationConfig, output: Path, progress: Optional[ProgressCallback] = None,
                   cancel: CancelFlag = None, on_estimate: Optional[Callable[[Dict], None]] = None) -> Dict:
    """Evaluate, then write evaluation.json / .md / .png into `output`; returns the results (without the figure's
    arrays) with "outputs" and "table_markdown" added."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    results = evaluate(config, progress, cancel, on_estimate)
    paths = {key: output / name for key, name in OUTPUT_NAMES.items()}
    results["outputs"] = {key: str(path) for key, path in paths.items()}
    markdown = markdown_report(results)
    results["table_markdown"] = markdown
    with OutputTransaction() as transaction:
        save_figure(results, transaction.stage(paths["figure"]))
        _drop_figure_arrays(results)
        transaction.stage(paths["markdown"]).write_text(markdown + "\n")
        transaction.stage(paths["json"]).write_bytes(report_json(results))
        transaction.commit()
    return results
