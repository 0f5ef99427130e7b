"""The protection without a GUI: start the engine on a scene's study, follow it, cancel it, load, compare, export.

What the application provides is injected: the MRML scene, the process factory that runs the engine and the
scheduler that polls it (a Qt timer in the panel, PollingScheduler headless), so the whole job runs on
slicer-core. The GUI hears back through plain callbacks, always called on the thread that drives the scheduler.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

from . import compare
from .errors import UserFacingError
from .export import ExportedFiles, exportResults
from .job import ProtectJob, ProtectRequest, ProtectResults
from .outputs import SOURCE_ATTRIBUTE, reportOf
from .runner import EngineProcess, ProgressEvent, ProtectCommand

# How often the engine's progress is read; short enough to feel live, long enough to cost nothing.
POLL_INTERVAL_S = 0.2
# After cancel(), the engine gets this long to stop before it is killed.
CANCEL_GRACE_S = 5.0

ProcessFactory = Callable[[ProtectCommand], EngineProcess]
ProgressCallback = Callable[[ProgressEvent], None]
FinishedCallback = Callable[[Optional[ProtectResults], Optional[str]], None]


class Scheduler(Protocol):
    """Calls a tick function again and again on the thread that owns the scene, until stopped."""

    def start(self, tick: Callable[[], None]) -> None:
        """Begin calling tick."""

    def stop(self) -> None:
        """Call tick no more (safe to call from inside tick)."""


class PollingScheduler:
    """A scheduler without an event loop: the caller's own loop drives it through runUntilStopped()."""

    def __init__(self, intervalSeconds: float = POLL_INTERVAL_S) -> None:
        self.intervalSeconds = intervalSeconds
        self._tick: Optional[Callable[[], None]] = None

    def start(self, tick: Callable[[], None]) -> None:
        """Remember tick for runUntilStopped()."""
        self._tick = tick

    def stop(self) -> None:
        """Forget the tick: runUntilStopped() returns."""
        self._tick = None

    @property
    def running(self) -> bool:
        """True between start() and stop()."""
        return self._tick is not None

    def runUntilStopped(self, timeout: Optional[float] = None) -> None:
        """Call the tick every interval until it stops the scheduler; TimeoutError after timeout s (the run goes on)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._tick is not None:
            self._tick()
            if self._tick is None:
                return
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"still running after {timeout:g} s")
            time.sleep(self.intervalSeconds)


class ProtectionLogic:
    """One protection at a time on one scene, plus the Compare view's bookkeeping and the export."""

    def __init__(self, scene, processFactory: ProcessFactory = EngineProcess, scheduler: Optional[Scheduler] = None,
                 workRoot: Optional[Path] = None, cancelGraceSeconds: float = CANCEL_GRACE_S) -> None:
        self.scene = scene
        self.processFactory = processFactory
        self.scheduler = scheduler if scheduler is not None else PollingScheduler()
        self.workRoot = workRoot  # where each run's temporary folder is made; None = the system's
        self.cancelGraceSeconds = cancelGraceSeconds
        self._job: Optional[ProtectJob] = None
        self._process: Optional[EngineProcess] = None
        self._cancelTime: Optional[float] = None
        self._progressCallback: Optional[ProgressCallback] = None
        self._finishedCallback: Optional[FinishedCallback] = None
        self._compareState: Optional[compare.CompareState] = None

    # --- protect ------------------------------------------------------------------------------------------

    def isRunning(self) -> bool:
        """True while an engine process belongs to this logic."""
        return self._process is not None

    def protect(self, request: ProtectRequest, waitForCompletion: bool = False,
                progressCallback: Optional[ProgressCallback] = None,
                finishedCallback: Optional[FinishedCallback] = None,
                timeout: Optional[float] = None) -> Optional[ProtectResults]:
        """Protect request.volumeNode. Blocking: returns the results or raises UserFacingError.

        Non-blocking: returns None at once; the scheduler's ticks forward progress and, once the engine has
        stopped, call finishedCallback(results, errorMessage) with exactly one of the two set.
        """
        if self.isRunning():
            raise UserFacingError("A protection is already running; wait for it or cancel it first.")
        volume = request.volumeNode
        if volume is not None and volume.GetScene() is not self.scene:
            raise UserFacingError(f"Volume '{volume.GetName()}' is not in this scene; load it into the scene first.")
        protectJob = ProtectJob(request, Path(tempfile.mkdtemp(prefix="UMedProtect-", dir=self.workRoot)))
        try:
            command = protectJob.prepare()
            process = self.processFactory(command)
            logging.info("UMedProtect runs: " + " ".join(process.argv()))
            process.start()
        except Exception:
            protectJob.cleanup()
            raise
        self._job, self._process = protectJob, process
        self._progressCallback, self._finishedCallback = progressCallback, finishedCallback
        self._cancelTime = None
        if waitForCompletion:
            try:
                process.wait(timeout=timeout, onEvent=progressCallback)
            except TimeoutError as error:
                self._release()
                raise UserFacingError(f"The engine did not finish in time ({error}).") from error
            return self._collect()
        self.scheduler.start(self._poll)
        return None

    def _poll(self) -> None:
        """One scheduler tick: forward progress; when the engine has stopped, load the results and report."""
        process = self._process
        if process is None:
            self.scheduler.stop()
            return
        for event in process.poll():
            if self._progressCallback:
                self._progressCallback(event)
        if self._cancelTime is not None and time.monotonic() - self._cancelTime > self.cancelGraceSeconds:
            process.kill()
        if not process.finished:
            return
        self.scheduler.stop()
        finished = self._finishedCallback
        try:
            results, message = self._collect(), None
        except UserFacingError as error:
            results, message = None, str(error)
        except Exception as error:  # still one sentence for the panel; the details go to the log
            logging.exception("UMedProtect could not load the results")
            results, message = None, f"The results could not be loaded: {error}"
        if finished:
            finished(results, message)

    def _collect(self) -> ProtectResults:
        """Turn a finished engine run into scene nodes, or raise UserFacingError; always cleans up."""
        process, protectJob = self._process, self._job
        try:
            message = process.failureMessage()
            if message:
                raise UserFacingError(message)
            return protectJob.loadResults()
        finally:
            self._release()

    def _release(self) -> None:
        """Forget the run and delete its temporary folder."""
        if self._job is not None:
            self._job.cleanup()
        self._job = self._process = None
        self._progressCallback = self._finishedCallback = None

    def cancel(self) -> None:
        """Stop the running engine; its results (if any) are discarded and the scene is left as it was."""
        if self._process is not None:
            self._cancelTime = time.monotonic()
            self._process.cancel()

    # --- compare ------------------------------------------------------------------------------------------

    def layoutNode(self):
        """The scene's layout node (Slicer's layout logic keeps exactly one)."""
        return self.scene.GetFirstNodeByClass("vtkMRMLLayoutNode")

    def showCompare(self, originalNode, protectedNode, differenceNode, labelSourceNode=None) -> None:
        """Switch to the three linked views; remembers the current layout for leaveCompare."""
        if not (originalNode and protectedNode and differenceNode):
            raise UserFacingError("Protect a volume first: the Compare view needs the original, protected and "
                                  "difference volumes.")
        self._compareState = compare.showCompare(self.layoutNode(), originalNode, protectedNode, differenceNode,
                                                 labelSourceNode, state=self._compareState)

    def compareWindows(self, protectedNode):
        """(name, level, width) of the windows the Compare view offers for a result: those its report states."""
        return compare.reportWindows(protectedNode)

    def setCompareWindow(self, originalNode, protectedNode, window) -> None:
        """Show Original and Protected of the Compare view in another (level, width); leaving restores their own."""
        if self._compareState is not None:
            compare.showInWindow((originalNode, protectedNode), window, self._compareState)

    def leaveCompare(self) -> None:
        """Restore the segmentation display, and the layout unless the user already switched to another one."""
        if self._compareState is None:
            return
        state, self._compareState = self._compareState, None
        compare.leaveCompare(self.layoutNode(), state)

    def forgetCompare(self) -> None:
        """The scene is closing: nothing to restore any more."""
        self._compareState = None

    # --- export -------------------------------------------------------------------------------------------

    def sourceVolumeOf(self, resultNode):
        """The volume a result was made from (the input selected now may differ); None when it is gone."""
        sourceId = resultNode.GetAttribute(SOURCE_ATTRIBUTE) if resultNode else None
        return self.scene.GetNodeByID(sourceId) if sourceId else None

    def exportResults(self, folder: Path, fileFormat: str, inputVolumeNode, protectedNode, differenceNode=None,
                      labelSourceNode=None, segmentIds: Sequence[str] = (), extraVersions: Optional[dict] = None,
                      overwrite: bool = False) -> ExportedFiles:
        """Write the protected volume (plus the chosen extras) and a sidecar with the report kept on it."""
        if not protectedNode:
            raise UserFacingError("Nothing to export yet: protect a volume first.")
        return exportResults(folder=Path(folder), fileFormat=fileFormat, inputVolumeNode=inputVolumeNode,
                             protectedNode=protectedNode, report=reportOf(protectedNode),
                             differenceNode=differenceNode, labelSourceNode=labelSourceNode, segmentIds=segmentIds,
                             extraVersions=extraVersions, overwrite=overwrite)

