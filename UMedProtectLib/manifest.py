"""The JSON-lines manifest of a dataset run: one record per finished study, appended as each study finishes.

Each record is written with one append of a whole line followed by fsync, so a run killed at any moment leaves
at most one torn last line; reading ignores it and opening for a resumed run cuts it off. The last record of a
study wins, so a study redone after a failure is read with its newest outcome.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Iterator, Mapping, Optional

from .reports import plain, sha256_file

MANIFEST_NAME = "manifest.jsonl"


def _lines(path: Path) -> Iterator[dict]:
    """The complete records of a manifest file, oldest first (a torn or damaged line is skipped)."""
    with open(path, "rb") as stream:
        for line in stream:
            if not line.endswith(b"\n"):
                return
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and isinstance(record.get("study"), str):
                yield record


class Manifest:
    """The manifest file of an output folder."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / MANIFEST_NAME

    def exists(self) -> bool:
        """True when a manifest from an earlier run is in the folder."""
        return self.path.is_file()

    def latest(self) -> Dict[str, dict]:
        """The newest record of every study, keyed by the study's relative path."""
        if not self.exists():
            return {}
        return {record["study"]: record for record in _lines(self.path)}

    def records(self) -> Iterator[dict]:
        """Every record, oldest first."""
        return _lines(self.path) if self.exists() else iter(())

    def start(self, fresh: bool) -> None:
        """Begin a run: an empty manifest (fresh) or the old one with a torn last line cut off (resume)."""
        if fresh or not self.exists():
            self.path.write_bytes(b"")
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as stream:
                stream.truncate(data.rfind(b"\n") + 1)

    def append(self, record: Mapping) -> None:
        """Add one record as a single appended line and flush it to disk before returning."""
        line = (json.dumps(plain(record), allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def still_valid(record: Optional[Mapping], folder: Path, inputs: Mapping[str, str]) -> bool:
    """True when a study's record says done, its inputs' hashes are `inputs`, and every output has its hash."""
    if not record or record.get("status") != "done":
        return False
    if record.get("input_sha256") != dict(inputs):
        return False
    outputs = record.get("outputs") or {}
    for relative, digest in outputs.items():
        path = folder / relative
        if not path.is_file() or sha256_file(path) != digest:
            return False
    return bool(outputs)
