"""All-or-nothing writing of several output files: stage each beside its target, then rename them all.

Every output is first written into a hidden temporary folder in the target's own folder (so that the final
os.replace is an atomic rename on one file system), under the target's final name (so that a header that
names its data file, as .mhd and .nhdr do, stays valid after the move). On commit the data files move before
their headers; if a move fails, the outputs already moved are rolled back to what was there before. On any
failure before or during commit, the temporary folders are removed and nothing new is left behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Set, Tuple, Union

from .errors import InputError

PathLike = Union[str, Path]


def resolved(path: PathLike) -> Path:
    """The absolute path with symbolic links followed, for comparing file identities."""
    return Path(os.path.abspath(os.path.realpath(os.fspath(path))))


class OutputTransaction:
    """Stage several output files and make them appear together (commit) or not at all."""

    def __init__(self, overwrite: bool = True, keep_intact: Iterable[PathLike] = ()):
        self.overwrite = overwrite
        self.keep_intact: Set[Path] = {resolved(p) for p in keep_intact}
        self._folders: Dict[Path, Path] = {}
        self._targets: List[Path] = []

    def __enter__(self) -> "OutputTransaction":
        return self

    def __exit__(self, *exc_info) -> None:
        self.discard()

    def stage(self, target: PathLike) -> Path:
        """The path to write `target`'s content to; it appears at `target` on commit."""
        target = resolved(target)
        if target in self._targets:
            raise InputError(f"two outputs are both {str(target)!r}; give each output its own file name")
        if target in self.keep_intact:
            raise InputError(f"output {str(target)!r} is an input file; choose another output name")
        if not target.parent.is_dir():
            raise InputError(f"the folder of output {str(target)!r} does not exist; create it first")
        if target.is_dir():
            raise InputError(f"output {str(target)!r} is a folder; give a file name")
        if target.exists() and not self.overwrite:
            raise InputError(f"output {str(target)!r} already exists; remove it or pass --overwrite")
        folder = self._folders.get(target.parent)
        if folder is None:
            try:
                folder = Path(tempfile.mkdtemp(prefix=".umed-partial-", dir=target.parent))
            except OSError as error:
                raise InputError(f"cannot write into {str(target.parent)!r}: {error.strerror}") from None
            self._folders[target.parent] = folder
        self._targets.append(target)
        return folder / target.name

    def _moves(self) -> List[Tuple[Path, Path]]:
        """(staged file, destination) pairs, data files before the headers that name them."""
        headers, data = [], []
        for parent, folder in self._folders.items():
            names = {t.name for t in self._targets if t.parent == parent}
            for staged in sorted(folder.iterdir()):
                (headers if staged.name in names else data).append((staged, parent / staged.name))
        missing = [t for t in self._targets if (self._folders[t.parent] / t.name) not in {s for s, _ in headers}]
        if missing:
            raise RuntimeError(f"output {str(missing[0])!r} was staged but never written")
        return data + headers

    def _check(self, moves: List[Tuple[Path, Path]]) -> None:
        """Refuse moves that would replace an input or an existing file we may not overwrite."""
        for staged, destination in moves:
            if destination in self.keep_intact:
                raise InputError(f"writing {str(destination)!r} (a data file of an output) would replace an "
                                 "input file; choose another output name")
            if staged.name not in {t.name for t in self._targets} and destination.exists() and not self.overwrite:
                raise InputError(f"data file {str(destination)!r} of an output already exists; remove it or pass "
                                 "--overwrite")

    def commit(self) -> List[Path]:
        """Move every staged file to its destination; on failure restore what was there before."""
        moves = self._moves()
        self._check(moves)
        done: List[Tuple[Path, Optional[Path]]] = []
        try:
            for staged, destination in moves:
                backup = None
                if destination.exists():
                    # A hard link keeps the old file reachable for a rollback without a moment where it is missing.
                    backup = staged.with_name(f".backup-{staged.name}")
                    try:
                        os.link(destination, backup)
                    except OSError:
                        shutil.copy2(destination, backup)
                os.replace(staged, destination)
                done.append((destination, backup))
        except BaseException:
            for destination, backup in reversed(done):
                if backup is not None:
                    os.replace(backup, destination)
                else:
                    destination.unlink(missing_ok=True)
            raise
        finally:
            self.discard()
        return [destination for destination, _ in done]

    def discard(self) -> None:
        """Remove the temporary folders and whatever is still in them."""
        for folder in self._folders.values():
            shutil.rmtree(folder, ignore_errors=True)
        self._folders.clear()
