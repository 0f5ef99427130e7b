"""Runs `python -m UMedProtectLib protect ... --progress json` in a background process and follows its progress.

The engine's stdout and stderr go to log files in the job folder; the caller polls them (a Qt timer in the panel,
a loop in blocking mode). No threads: nothing depends on when Slicer's embedded Python lets a thread run, and
MRML is only ever touched by the caller, on the main thread.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .engine import engineSearchPath, engineSettings
from .errors import UserFacingError

# Exit codes of the umed-protect command.
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2


@dataclass(frozen=True)
class ProgressEvent:
    """One line of the engine's progress: stage, fraction of the whole job (0..1) and a message."""

    stage: str
    fraction: float
    message: str = ""


@dataclass(frozen=True)
class ProtectCommand:
    """One `umed-protect protect` run: its files, and the settings it is to protect with."""

    image: Path
    label: Path
    output: Path
    difference: Path
    report: Path
    settings: engineSettings.ProtectSettings = engineSettings.ProtectSettings()
    profile: Optional[Path] = None
    mark: Optional[Path] = None  # the owner's key file

    def arguments(self) -> list[str]:
        """Command-line arguments after the program name; the settings' options are written by the engine itself."""
        args = ["protect", "--image", str(self.image), "--label", str(self.label), "--output", str(self.output),
                "--difference", str(self.difference), "--report", str(self.report), *self.settings.to_args(),
                "--progress", "json", "--overwrite"]
        if self.profile is not None:
            args += ["--profile", str(self.profile)]
        if self.mark is not None:
            args += ["--mark", str(self.mark)]
        return args


def pythonExecutable() -> str:
    """Slicer's own Python (PythonSlicer) when running inside Slicer, else this interpreter.

    Refuses an executable that is not a Python (e.g. the Slicer application itself): `-m` would start Slicer.
    """
    found = shutil.which("PythonSlicer")
    if found:
        return found
    if "python" in Path(sys.executable).name.lower():
        return sys.executable
    raise UserFacingError("Cannot find Slicer's Python interpreter (PythonSlicer) to run the engine; reinstall Slicer.")


def engineEnvironment(base: Optional[dict] = None) -> dict:
    """Environment for the engine process: the package importable, output unbuffered, UTF-8 text."""
    env = dict(os.environ if base is None else base)
    folder = engineSearchPath()
    if folder:
        env["PYTHONPATH"] = os.pathsep.join([folder] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def parseProgressLine(line: str) -> Optional[ProgressEvent]:
    """A ProgressEvent from one JSON line of the engine, or None for anything else (plain log text)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or "stage" not in data or "fraction" not in data:
        return None
    try:
        fraction = min(max(float(data["fraction"]), 0.0), 1.0)
    except (TypeError, ValueError):
        return None
    return ProgressEvent(str(data["stage"]), fraction, str(data.get("message", "")))


class _LogFollower:
    """Reads the lines a process appends to a file, as they arrive (partial last lines wait for their end)."""

    def __init__(self, path: Path):
        self.handle = open(path, "rb")
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.pending = ""

    def newLines(self, final: bool = False) -> list[str]:
        """Complete lines written since the last call; final=True also returns an unterminated last line."""
        lines = (self.pending + self.decoder.decode(self.handle.read(), final=final)).split("\n")
        if final:
            self.pending = ""
            if lines[-1] == "":
                lines.pop()
        else:
            self.pending = lines.pop()
        return [line.rstrip("\r") for line in lines]

    def close(self) -> None:
        self.handle.close()


class EngineProcess:
    """One engine run in a child process: start, poll for progress, cancel, and a one-sentence outcome."""

    def __init__(self, command: ProtectCommand, python: Optional[str] = None, env: Optional[dict] = None):
        self.command = command
        self.python = python or pythonExecutable()
        self.env = env if env is not None else engineEnvironment()
        self.process: Optional[subprocess.Popen] = None
        self.cancelRequested = False
        self.logLines: list[str] = []
        self.errorLines: list[str] = []
        self.lastEvent: Optional[ProgressEvent] = None
        self._followers: dict = {}
        self._drained = False

    def argv(self) -> list[str]:
        """The full command line."""
        return [self.python, "-m", "UMedProtectLib"] + self.command.arguments()

    def start(self) -> None:
        """Launch the child process with its output going to log files in the job folder."""
        workFolder = Path(self.command.output).parent
        workFolder.mkdir(parents=True, exist_ok=True)
        # A new process group so that cancelling also reaches any worker the engine may spawn.
        extra = ({"start_new_session": True} if os.name == "posix"
                 else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP})
        logs = {channel: workFolder / f"engine-{channel}.log" for channel in ("stdout", "stderr")}
        with open(logs["stdout"], "wb") as out, open(logs["stderr"], "wb") as err:
            # Run in the job folder: the engine must be found through PYTHONPATH, never by accident in the cwd.
            self.process = subprocess.Popen(self.argv(), stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                            env=self.env, cwd=str(workFolder), **extra)
        self._followers = {channel: _LogFollower(path) for channel, path in logs.items()}

    def poll(self) -> list[ProgressEvent]:
        """Progress events that arrived since the last call (never blocks)."""
        if not self._followers or self._drained:
            return []
        # Check for exit before reading, so that the final read sees everything the process wrote.
        exited = self.process.poll() is not None
        events = []
        self.errorLines += self._followers["stderr"].newLines(final=exited)
        for line in self._followers["stdout"].newLines(final=exited):
            event = parseProgressLine(line)
            if event is None:
                self.logLines.append(line)
            else:
                self.lastEvent = event
                events.append(event)
        if exited:
            self._drained = True
            for follower in self._followers.values():
                follower.close()
        return events

    @property
    def finished(self) -> bool:
        """True once the process has exited and all of its output has been read by poll()."""
        return self._drained

    def cancel(self) -> None:
        """Ask the engine to stop (terminate; the caller may kill() if it lingers)."""
        self.cancelRequested = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def kill(self) -> None:
        """Stop the engine at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()

    def wait(self, timeout: Optional[float] = None, onEvent=None) -> int:
        """Block until the process ends (blocking mode for scripts and tests); returns its exit code."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            for event in self.poll():
                if onEvent is not None:
                    onEvent(event)
            if deadline is not None and time.monotonic() > deadline:
                self.kill()
                self.process.wait()
                self.poll()  # drains and closes the log files
                raise TimeoutError(f"the engine did not finish within {timeout:g} s")
            time.sleep(0.05)
        return self.process.returncode

    def failureMessage(self) -> Optional[str]:
        """None when the run succeeded, else one sentence for the panel."""
        code = self.process.returncode if self.process is not None else None
        if code == EXIT_OK and not self.cancelRequested:
            return None
        if self.cancelRequested:
            return "Protection was cancelled; nothing was added to the scene."
        detail = next((line.strip() for line in reversed(self.errorLines) if line.strip()), "")
        if code is not None and code < 0:  # killed by a signal: no message of its own, so say who could have
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
            return (f"The protection engine was killed ({name}) before it finished, e.g. by the system for lack of "
                    "memory; nothing was added to the scene.")
        if code == EXIT_BAD_INPUT:
            return detail or "The engine refused the inputs."
        if "out of memory" in detail.lower():
            return "The engine ran out of memory; choose the CPU device or a smaller volume, then try again."
        if "No module named" in detail and "UMedProtectLib" not in detail:
            return f"A Python package the engine needs is missing ({detail}); press Protect again to install it."
        return f"The protection engine failed (exit code {code}): {detail or 'no error message'}."
