"""What the command line writes: the progress reporter asked for, where human-readable lines go, the summary."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence, TextIO

from .errors import StandardOutputError, SummaryNotPrinted
from .progress import BarReporter, JsonLinesReporter, ProgressCallback


def reporter(kind: str) -> Optional[ProgressCallback]:
    """The progress listener for --progress: a bar on stderr, JSON lines on stdout, or nothing."""
    if kind == "json":
        return JsonLinesReporter(sys.stdout)
    if kind == "bar":
        return BarReporter(sys.stderr)
    return None


def message_stream(args: argparse.Namespace) -> TextIO:
    """Where human-readable lines go: stderr when stdout carries JSON progress lines."""
    return sys.stderr if getattr(args, "progress", "bar") == "json" else sys.stdout


def print_summary(lines: Sequence[str], stream: TextIO, code: int = 0) -> None:
    """Print the summary of a run whose outputs are already on disk. A standard output that fails now cannot undo
    them: the run ends as SummaryNotPrinted with its own exit `code`, not as one that wrote nothing."""
    try:
        print("\n".join(lines), file=stream)
        stream.flush()  # a block-buffered stdout would only fail later, at the exit's flush
    except StandardOutputError as error:
        raise SummaryNotPrinted(error.reason, code) from None
