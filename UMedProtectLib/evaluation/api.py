"""Python API: run an evaluation and write its JSON, Markdown table and PNG figure (atomically) into a folder."""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

from ..progress import CancelFlag, ProgressCallback
from .config import EvaluationConfig
from .figure import save_figure
from .harness import evaluate
from .table import markdown_report

OUTPUT_NAMES = {"json": "evaluation.json", "markdown": "evaluation.md", "figure": "evaluation.png"}


def _jsonable(value):
    """Drop the figure arrays and turn non-finite floats into strings that JSON readers accept."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "nan")
    if hasattr(value, "item") and getattr(value, "shape", None) == ():
        return _jsonable(value.item())
    return value


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(handle)
    try:
        write(Path(temporary))
        # mkstemp creates the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def run_evaluation(config: EvaluationConfig, output: Path, progress: Optional[ProgressCallback] = None,
                   cancel: CancelFlag = None, on_estimate: Optional[Callable[[Dict], None]] = None) -> Dict:
    """Evaluate, then write evaluation.json / .md / .png into `output`; returns the results with "outputs" added."""
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    results = evaluate(config, progress, cancel, on_estimate)
    paths = {key: output / name for key, name in OUTPUT_NAMES.items()}
    results["outputs"] = {key: str(path) for key, path in paths.items()}
    markdown = markdown_report(results)
    results["table_markdown"] = markdown
    _write_atomically(paths["figure"], lambda p: save_figure(results, p))
    _write_atomically(paths["markdown"], lambda p: p.write_text(markdown + "\n"))
    _write_atomically(paths["json"], lambda p: p.write_text(json.dumps(_jsonable(results), indent=1) + "\n"))
    return results
