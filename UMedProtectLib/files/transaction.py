"""All-or-nothing writing of several output files: stage each beside its target, then rename them all.

Every output is first written into a hidden staging folder (`.umed-partial-*`) in the target's own folder (so
that the final os.replace is an atomic rename on one file system), under the target's final name (so that a
header that names its data file, as .mhd and .nhdr do, stays valid after the move). On commit the data files
move before their headers; if a move fails, the outputs already moved are rolled back to what was there before.
On any failure that Python sees, the staging folders are removed and nothing new is left behind.

A process killed outright (SIGKILL, power loss) runs no cleanup. For that case each staging folder is locked
(flock) by the process that owns it, and before the renames a journal (which destination gets which new file,
and a hard-linked backup of what it replaces) is written into every staging folder of the set. The next run that
writes into one of those folders, or calls `recover_stale`, finds the unlocked staging folders, undoes the renames
the journal lists (only where the destination still is the file this set put there) and removes them. So a set of
outputs is all or nothing: a kill between two renames leaves a mixture only until the next run into that folder.
A journal whose renames all happened describes a complete set: it is kept (only the staging folder goes), so a
kill after the last rename never costs the outputs it had just put in place.
Commits into the same folder are serialised with a lock on the folder itself, so two runs never interleave their
renames. SIGINT and SIGTERM are held during the renames and the cleanup and acted on (rollback) afterwards.

Every file the tool writes goes through `confined`: its folder is resolved, its own name is not followed (a rename
replaces a symbolic link, never writes through it), and it is refused if it is, or links to, an input or lies
outside the folder it belongs to (a dataset run's output folder, through a linked subfolder).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Mapping, Optional, Tuple, Union

from ..errors import Cancelled, InputError
from .formats import image_extension, written_data_files

try:
    import fcntl
except ImportError:  # Windows: no flock; stale staging folders are then left for the user to remove
    fcntl = None  # type: ignore[assignment]

PathLike = Union[str, Path]
STAGING_PREFIX = ".umed-partial-"
JOURNAL = ".umed-journal.json"
BACKUP_PREFIX = ".backup-"
# Errors that mean "this place cannot take the outputs" (a fact about the disk or folder, exit 2), not a bug.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT}
# Below this many free bytes, a writer's failure (ITK and torch report no errno) is taken to be a full disk.
FULL_DISK_BYTES = 2**20
# Outputs (named by their command-line option) that are images, and the one that is a PNG.
IMAGE_OUTPUTS = ("output", "difference")
PNG_OUTPUTS = ("preview",)
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Seconds to pause after each rename of a commit: widens the windows between renames for the fault tests.
RENAME_PAUSE_VARIABLE = "UMED_PROTECT_TEST_RENAME_PAUSE"
NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)  # open a file itself, never what a symbolic link in its place names


def resolved(path: PathLike) -> Path:
    """The absolute path with symbolic links followed, for comparing file identities."""
    return Path(os.path.abspath(os.path.realpath(os.fspath(path))))


def _inside(path: Path, folder: Path) -> bool:
    """Whether a resolved path is `folder` or lies under it."""
    return path == folder or folder in path.parents


def confined(path: PathLike, inputs: Mapping[Path, Path] = {}, folder: Optional[PathLike] = None,
             what: str = "output") -> Path:
    """Where a file the tool writes really goes: its folder resolved, its own name kept (a link is not followed).

    Refused: the file is an input or a symbolic link to one, a link that leads outside its folder, or a folder that
    lies outside `folder` (a linked subfolder of a dataset run's output folder). `inputs`: resolved -> as given.
    """
    given = Path(path)
    parent = resolved(given.parent)
    if folder is not None and not _inside(parent, resolved(folder)):
        raise InputError(f"{what} {str(given)!r} would be written to {str(parent)!r}, outside {str(folder)!r} (a "
                         "symbolic link on the way); remove the link: nothing is written outside that folder")
    target = parent / given.name
    real = resolved(target)
    if real in inputs:
        raise InputError(f"{what} {str(given)!r} is an input file ({str(inputs[real])!r}); choose another name "
                         "(inputs are never modified)")
    if target.is_symlink() and not _inside(real, resolved(folder) if folder is not None else parent):
        raise InputError(f"{what} {str(given)!r} is a symbolic link to {str(real)!r}, outside its folder; remove "
                         "the link (outputs replace a link, they never write through it)")
    return target


class _Hold:
    """The process's hold on SIGINT and SIGTERM: how deep, the handlers it replaced, the signals it recorded."""

    depth = 0
    previous: Dict[int, object] = {}
    recorded: List[int] = []


_COMMITTED: List[Path] = []  # every output this process's transactions put in place, oldest first


def committed_outputs() -> List[Path]:
    """The outputs that this process's transactions have committed so far, oldest first: a cancel that arrives after
    a commit must not say that nothing was written (cli/main.py)."""
    return list(_COMMITTED)


def _record(signum, frame) -> None:
    """The handler while signals are held: remember the signal, act on it when the hold ends."""
    _Hold.recorded.append(signum)


@contextlib.contextmanager
def held_signals() -> Iterator[None]:
    """Hold SIGINT and SIGTERM so that renames and cleanup are not cut in half; they are acted on afterwards.

    Blocking them in this thread is not enough: the kernel may deliver a signal to any thread (torch's, ITK's,
    Dask's), and Python then runs its handler in the main thread between two statements, e.g. after a rename and
    before it is recorded. So in the main thread the handlers themselves are replaced by one that only records the
    signal; when the outermost hold ends the old handlers come back and get what was recorded and not taken by
    stop_requested(). The signals are also blocked in the holding thread, whichever it is.
    """
    blocking = hasattr(signal, "pthread_sigmask")
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS) if blocking else None
    main = threading.current_thread() is threading.main_thread()
    outermost = main and _Hold.depth == 0
    if outermost:
        _Hold.previous = {signum: signal.signal(signum, _record) for signum in HELD_SIGNALS}
    _Hold.depth += main
    try:
        yield
    finally:
        _Hold.depth -= main
        if outermost:
            for signum, handler in _Hold.previous.items():
                if handler is not None:  # None: a handler not set from Python, which cannot be put back
                    signal.signal(signum, handler)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal blocked meanwhile arrives now
        if outermost:
            recorded, _Hold.recorded = _Hold.recorded, []
            for signum in dict.fromkeys(recorded):
                signal.raise_signal(signum)


def stop_requested() -> bool:
    """Whether a held SIGINT or SIGTERM is waiting; it is taken (acting on it is the caller's job)."""
    waiting = bool(_Hold.recorded)
    _Hold.recorded = []
    if hasattr(signal, "sigtimedwait"):
        while signal.sigtimedwait(HELD_SIGNALS, 0) is not None:
            waiting = True
    return waiting


def _lock(path: Path, blocking: bool = True) -> Optional[int]:
    """An exclusive flock on a folder, as an open descriptor (None when another process holds it)."""
    descriptor = os.open(path, os.O_RDONLY)
    if fcntl is None:
        return descriptor
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


@contextlib.contextmanager
def folder_locks(folders: Iterable[Path]) -> Iterator[None]:
    """Hold the locks of several folders, taken in sorted order so that two runs cannot deadlock."""
    descriptors = []
    try:
        for folder in sorted(set(folders)):
            descriptors.append(_lock(folder))
        yield
    finally:
        for descriptor in descriptors:
            os.close(descriptor)


def _same_file(path: Path, identity: List[int]) -> bool:
    """Whether `path` is the file with this (device, inode)."""
    try:
        status = os.stat(path, follow_symlinks=False)
    except OSError:
        return False
    return [status.st_dev, status.st_ino] == identity


def _roll_back(journal: Path) -> None:
    """Undo the renames a dead run's journal lists, where the destination is still that run's file.

    When every destination is that run's file, all its renames happened: the set is complete and stays.
    """
    try:
        entries = json.loads(journal.read_text(encoding="utf-8"))["moves"]
    except (OSError, ValueError, KeyError):
        return  # no complete journal: the run died before its first rename
    moved = [entry for entry in entries if _same_file(Path(entry["destination"]), entry["identity"])]
    if len(moved) == len(entries):
        return
    for entry in moved:  # the others were never moved, or were replaced since by someone else: not ours to touch
        destination, backup = Path(entry["destination"]), entry["backup"]
        if backup is not None and os.path.lexists(backup):
            os.replace(backup, destination)
        else:
            destination.unlink()


def recover_stale(folder: Path) -> List[Path]:
    """Roll back and remove the staging folders in `folder` whose owner died; returns what was removed."""
    removed = []
    if fcntl is None or not folder.is_dir():
        return removed
    for staging in sorted(folder.glob(STAGING_PREFIX + "*")):
        if not staging.is_dir():
            continue
        descriptor = _lock(staging, blocking=False)
        if descriptor is None:
            continue  # a live run owns it
        try:
            journal = staging / JOURNAL
            if journal.is_file():
                _roll_back(journal)
            shutil.rmtree(staging, ignore_errors=True)
            removed.append(staging)
        finally:
            os.close(descriptor)
    return removed


def free_bytes(folder: Path) -> Optional[int]:
    """Free space for unprivileged writers on the file system of `folder`, or None if it cannot be asked."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def full_disk(folder: Path) -> Optional[InputError]:
    """The one-line error to give when a write into `folder` failed because its disk is full, else None."""
    free = free_bytes(folder)
    if free is None or free >= FULL_DISK_BYTES:
        return None
    return InputError(f"the disk holding {str(folder)!r} is full ({free} bytes free); nothing was written")


def check_writable(targets: Iterable[Optional[PathLike]]) -> None:
    """Before any work: each target's folder exists and takes new files (stale staging folders are cleaned first)."""
    for parent in sorted({resolved(Path(t).parent) for t in targets if t is not None}):
        if not parent.is_dir():
            raise InputError(f"the output folder {str(parent)!r} does not exist; create it first")
        try:
            with held_signals(), folder_locks([parent]):
                recover_stale(parent)
                os.rmdir(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
        except OSError as error:
            raise InputError(f"cannot write into the output folder {str(parent)!r}: {error.strerror}") from None


@contextlib.contextmanager
def created_folders(folders: Iterable[PathLike]) -> Iterator[None]:
    """Create the missing output folders (a DICOM series' folder) and remove them again, if still empty, on failure."""
    made: List[Path] = []
    try:
        for folder in sorted({resolved(f) for f in folders}):
            for path in reversed([p for p in (folder, *folder.parents) if not p.exists()]):
                try:
                    path.mkdir()
                except OSError as error:
                    raise InputError(f"cannot create the output folder {str(path)!r}: {error.strerror}") from None
                made.append(path)
        yield
    except BaseException:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
        raise


class OutputTransaction:
    """Stage several output files and make them appear together (commit) or not at all."""

    def __init__(self, overwrite: bool = True, keep_intact: Iterable[PathLike] = (), folder: Optional[PathLike] = None):
        self.overwrite = overwrite
        self.keep_intact: Dict[Path, Path] = {resolved(p): Path(p) for p in keep_intact}  # resolved -> as given
        self.folder = folder  # every output must lie inside it (a dataset run's output folder); None: anywhere
        self._folders: Dict[Path, Path] = {}
        self._locks: Dict[Path, int] = {}
        self._targets: List[Path] = []

    def check(self, outputs: Mapping[str, Optional[PathLike]]) -> None:
        """Before any work, refuse the planned outputs (option name -> path) that could not be committed.

        Refused: the wrong file type, an input, two outputs that are one file, a folder, a missing folder, an existing
        file without overwrite, or a folder that takes no new files; the same rules stage() and commit() apply, asked
        now rather than after a fit of many minutes.
        """
        seen: Dict[Path, str] = {}
        for option, path in outputs.items():
            if path is None:
                continue
            flag = "--" + option.replace("_", "-")
            extra: List[Path] = []
            if option in IMAGE_OUTPUTS:
                image_extension(path)
                extra = written_data_files(path)
            if option in PNG_OUTPUTS and not Path(path).name.lower().endswith(".png"):
                raise InputError(f"{flag} {str(path)!r} must be a .png file")
            for file, what in [(Path(path), flag), *((data, f"the data file of {flag}") for data in extra)]:
                target = confined(file, self.keep_intact, self.folder, what)
                if target in seen:
                    raise InputError(f"{what} and {seen[target]} are the same file {str(file)!r}; give each its own "
                                     "name")
                seen[target] = what
                if target.is_dir():
                    raise InputError(f"{what} {str(file)!r} is a folder; give a file name")
                if not target.parent.is_dir():
                    raise InputError(f"the folder of {what} {str(file)!r} does not exist; create it first")
                if os.path.lexists(target) and not self.overwrite:
                    raise InputError(f"{what} {str(file)!r} already exists; remove it or pass --overwrite")
        check_writable(outputs.values())

    def __enter__(self) -> "OutputTransaction":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        # Asked before discarding: removing the staged files frees the space again.
        full = [full_disk(parent) for parent in self._folders] if isinstance(error, (OSError, RuntimeError)) else []
        staged = {folder: parent for parent, folder in self._folders.items()}
        self.discard()
        if isinstance(error, OSError) and error.errno in WRITE_ERRNOS:
            # A copy's error names its source first (filename) and the file it wrote second (filename2): name the
            # output, not an input or its staging folder.
            named = [Path(name) for name in (error.filename2, error.filename) if name]
            where = next((staged[path.parent] / path.name for path in named if path.parent in staged),
                         named[-1] if named else None)
            where_text = f" {str(where)!r}" if where is not None else ""
            raise InputError(f"could not write the outputs{where_text}: {error.strerror}; nothing was "
                             "written") from None
        if any(full) and not isinstance(error, Cancelled):
            raise next(e for e in full if e) from None

    def stage(self, target: PathLike) -> Path:
        """The path to write `target`'s content to; it appears at `target` on commit."""
        target = confined(target, self.keep_intact, self.folder)
        if target in self._targets:
            raise InputError(f"two outputs are both {str(target)!r}; give each output its own file name")
        if not target.parent.is_dir():
            raise InputError(f"the folder of output {str(target)!r} does not exist; create it first")
        if target.is_dir():
            raise InputError(f"output {str(target)!r} is a folder; give a file name")
        if os.path.lexists(target) and not self.overwrite:
            raise InputError(f"output {str(target)!r} already exists; remove it or pass --overwrite")
        folder = self._folders.get(target.parent)
        if folder is None:
            try:
                with held_signals(), folder_locks([target.parent]):
                    recover_stale(target.parent)
                    folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target.parent))
                    self._folders[target.parent] = folder
                    self._locks[folder] = _lock(folder)
            except OSError as error:
                raise InputError(f"cannot write into {str(target.parent)!r}: {error.strerror}") from None
        self._targets.append(target)
        return folder / target.name

    def _moves(self) -> List[Tuple[Path, Path]]:
        """(staged file, destination) pairs, data files before the headers that name them."""
        headers, data = [], []
        for parent, folder in self._folders.items():
            names = {t.name for t in self._targets if t.parent == parent}
            for staged in sorted(folder.iterdir()):
                if staged.name != JOURNAL and not staged.name.startswith(BACKUP_PREFIX):
                    (headers if staged.name in names else data).append((staged, parent / staged.name))
        missing = [t for t in self._targets if (self._folders[t.parent] / t.name) not in {s for s, _ in headers}]
        if missing:
            raise RuntimeError(f"output {str(missing[0])!r} was staged but never written")
        return data + headers

    def _check(self, moves: List[Tuple[Path, Path]]) -> None:
        """Refuse moves that would replace an input or an existing file we may not overwrite."""
        for staged, destination in moves:
            confined(destination, self.keep_intact, self.folder)  # a data file of an output, or a link made meanwhile
            if os.path.lexists(destination) and not self.overwrite:
                # Checked again here, under the folder lock: another run may have written it during this one.
                raise InputError(f"output {str(destination)!r} already exists (written by another run meanwhile?); "
                                 "remove it or pass --overwrite; nothing of this run was written")

    def _journal(self, moves: List[Tuple[Path, Path]]) -> List[Tuple[Path, Path, Optional[Path]]]:
        """Back up what each move replaces and write the journal of the set into every staging folder."""
        plan = []
        for staged, destination in moves:
            backup = None
            if os.path.lexists(destination):
                # A hard link keeps the old file reachable for a rollback without a moment where it is missing.
                backup = staged.with_name(BACKUP_PREFIX + staged.name)
                try:
                    os.link(destination, backup, follow_symlinks=False)
                except OSError:
                    shutil.copy2(destination, backup, follow_symlinks=False)
            plan.append((staged, destination, backup))
        entries = [{"destination": str(d), "backup": str(b) if b else None,
                    "identity": [os.stat(s).st_dev, os.stat(s).st_ino]} for s, d, b in plan]
        text = json.dumps({"created": time.time(), "moves": entries})
        for folder in self._folders.values():
            descriptor = os.open(folder / JOURNAL, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NO_FOLLOW, 0o600)
            try:
                os.write(descriptor, text.encode("utf-8"))
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
        return plan

    def commit(self) -> List[Path]:
        """Move every staged file to its destination; on failure or a held stop signal restore what was before."""
        moves = self._moves()
        done: List[Tuple[Path, Optional[Path]]] = []
        pause = float(os.environ.get(RENAME_PAUSE_VARIABLE) or 0)
        with held_signals(), folder_locks(self._folders):
            try:
                self._check(moves)
                for staged, destination, backup in self._journal(moves):
                    os.replace(staged, destination)
                    time.sleep(pause)  # a test hook: the window between a rename and its record, widened
                    done.append((destination, backup))
                if stop_requested():
                    raise Cancelled("terminated")
                # Noted while the signals are still held: one that arrives from here on is raised after the set is
                # in place.
                _COMMITTED.extend(destination for destination, _ in done)
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
        """Remove the staging folders and whatever is still in them, then release their locks."""
        with held_signals():
            for folder in self._folders.values():
                shutil.rmtree(folder, ignore_errors=True)
            for descriptor in self._locks.values():
                os.close(descriptor)
            self._folders.clear()
            self._locks.clear()
