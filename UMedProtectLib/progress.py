"""Progress events and the two reporters of the command line: a bar on stderr and JSON lines."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from typing import Callable, Optional, TextIO


@dataclass(frozen=True)
class Progress:
    """One progress event: a stage name, the fraction of the whole job done (0..1) and a message."""

    stage: str
    fraction: float
    message: str = ""


ProgressCallback = Callable[[Progress], None]
CancelFlag = Callable[[], bool]


def emit(callback: Optional[ProgressCallback], stage: str, fraction: float, message: str = "") -> None:
    """Send an event if there is a listener."""
    if callback is not None:
        callback(Progress(stage, min(max(float(fraction), 0.0), 1.0), message))


def check_cancel(cancel: Optional[CancelFlag]) -> None:
    """Raise Cancelled when the caller's flag is set."""
    from .errors import Cancelled

    if cancel is not None and cancel():
        raise Cancelled("cancelled by the user")


class JsonLinesReporter:
    """Writes one JSON object per event, for another process (the Slicer panel) to follow."""

    def __init__(self, stream: TextIO = sys.stdout):
        self.stream = stream

    def __call__(self, event: Progress) -> None:
        self.stream.write(json.dumps(asdict(event)) + "\n")
        self.stream.flush()


class BarReporter:
    """Draws a progress bar on a terminal; elsewhere (logs, CI) prints a line per stage and per 10 %."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30):
        self.stream = stream
        self.width = width
        self.interactive = stream.isatty()
        self._start = time.monotonic()
        self._last: tuple = ()

    def __call__(self, event: Progress) -> None:
        filled = int(round(event.fraction * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        elapsed = time.monotonic() - self._start
        line = f"[{bar}] {event.fraction * 100:5.1f}% {elapsed:6.1f}s {event.stage}: {event.message}"[:120]
        if self.interactive:
            self.stream.write("\r" + line.ljust(120) + ("\n" if event.fraction >= 1.0 else ""))
        else:
            key = (event.stage, int(event.fraction * 10))
            if key != self._last:
                self.stream.write(line + "\n")
            self._last = key
        self.stream.flush()
