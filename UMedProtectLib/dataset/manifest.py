"""The JSON-lines manifest of a dataset run: one record per finished study, appended as each study finishes.

Each record is written with one append of a whole line followed by fsync, so a run killed at any moment leaves
at most one torn last line; reading ignores it and opening for a resumed run cuts it off. The last record of a
study wins, so a study redone after a failure is read with its newest outcome.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Dict, Iterator, Mapping, Optional

from ..errors import InputError
from ..files.reports import plain, sha256_file
from ..files.transaction import NO_FOLLOW, confined

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

    def __init__(self, folder: Path, inputs: Mapping[Path, Path] = {}):
        self.folder = folder
        self._fresh = False  # the next record replaces the file (start)
        self.path = confined(folder / MANIFEST_NAME, inputs, folder, "the manifest")
        if not (self.path.is_symlink() or self.path.is_file() or not self.path.exists()):  # links: _open refuses
            raise InputError(f"{str(self.path)!r} is not a regular file (a folder?); remove it or choose another "
                             "--output-dir")

    def _open(self, flags: int) -> int:
        """A descriptor of the manifest file itself: a symbolic link in its place is refused, never written through."""
        try:
            return os.open(self.path, flags | NO_FOLLOW, 0o644)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise InputError(f"{str(self.path)!r} is a symbolic link; remove it (the manifest is never written "
                                 "through a link)") from None
            raise

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
        """Begin a run: the old manifest with a torn last line cut off (resume), or (fresh) a new one, which replaces
        the old one with its first record only: a run stopped before any study finished (a closed standard output,
        Ctrl+C) left the earlier run's manifest empty, its outputs unrecorded, or an empty one that refused a rerun."""
        self._fresh = fresh
        if fresh or not self.exists():
            return
        descriptor = self._open(os.O_RDWR)
        try:
            data = self.path.read_bytes()
            if data and not data.endswith(b"\n"):
                os.ftruncate(descriptor, data.rfind(b"\n") + 1)
        finally:
            os.close(descriptor)

    def append(self, record: Mapping) -> None:
        """Add one record as a single appended line (the first of a fresh run replaces the old manifest) and flush
        it to disk before returning."""
        line = (json.dumps(plain(record), allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")
        descriptor = self._open(os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if self._fresh else os.O_APPEND))
        try:
            os.write(descriptor, line)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self._fresh = False


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
