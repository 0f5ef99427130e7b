"""One protection of a scene volume: write the inputs, describe the engine run, and load its results back.

All methods run on the main thread; only the engine process (runner.py) works in the background.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .budget import displayWindow, windowArgument
from .engine import engineSettings
from .errors import UserFacingError
from .export import writeVolumeNode
from .labelmaps import labelmapNodeOnVolumeGrid
from .metrics import createMetricsTable
from .nodes import RemoveAddedNodes, nodeIds
from .outputs import REPORT_ATTRIBUTE, createDifferenceVolume, createProtectedVolume
from .runner import ProtectCommand
from .volumes import ijkToRasMatrix, readVolumeArray

_DEFAULTS = engineSettings.ProtectSettings()


@dataclass
class ProtectRequest:
    """What the user chose in the panel (or a script passed to the logic); defaults are the engine's."""

    volumeNode: object
    labelSourceNode: object
    segmentIds: Sequence[str] = ()
    labelValues: str = ""  # only for a label map source: "1,2" or "" for every label > 0
    # None: the engine's default for the study, as `protect` resolves it; else an override in 1/255 steps of the window.
    epsilonSteps: Optional[int] = None
    # "" = the volume's display window for an override and the engine's choice for the default; or "robust", a preset
    # such as "soft-tissue", "level,width".
    window: str = ""
    bandWidth: int = _DEFAULTS.band_width
    preset: str = _DEFAULTS.preset
    device: str = _DEFAULTS.device
    seed: int = _DEFAULTS.seed
    profilePath: Optional[Path] = None
    iterations: Optional[int] = None  # overrides the preset (scripts, self-test); the panel uses presets
    markKeyPath: Optional[Path] = None  # the owner's key file: its mark is embedded too (docs/audit.md)
    markOnly: bool = False  # the mark alone (design none), no protection perturbation

    def settings(self, window: Optional[str], labels: str) -> "engineSettings.ProtectSettings":
        """The engine settings this request means, with the reading window and label values of the prepared files."""
        try:
            return engineSettings.ProtectSettings(
                epsilon=None if self.epsilonSteps is None else engineSettings.epsilon_of_steps(self.epsilonSteps),
                window=window or None,
                band_width=int(self.bandWidth), labels=engineSettings.parse_labels(labels), preset=self.preset,
                device=self.device, seed=int(self.seed), iterations=self.iterations,
                **({"design": "none"} if self.markOnly else {}))
        except ValueError as error:  # the engine's refusal (InputError), in the panel's words
            raise UserFacingError(f"{str(error)[:1].upper()}{str(error)[1:]}.") from None


@dataclass
class ProtectResults:
    """The nodes a successful run added to the scene, and the engine's report."""

    protectedNode: object
    differenceNode: object
    metricsTableNode: object
    report: dict = field(default_factory=dict)


def validateRequest(request: ProtectRequest) -> None:
    """Refuse, in one sentence, inputs that cannot be protected (before anything is written or started)."""
    volume = request.volumeNode
    if volume is None or volume.GetImageData() is None:
        raise UserFacingError("Choose a volume with image data to protect.")
    if volume.IsA("vtkMRMLLabelMapVolumeNode"):
        raise UserFacingError(f"'{volume.GetName()}' is a label map; choose the image volume to protect.")
    if volume.GetImageData().GetNumberOfScalarComponents() != 1:
        raise UserFacingError(f"'{volume.GetName()}' has colour or vector voxels; choose a scalar (grey-level) volume.")
    if request.labelSourceNode is None:
        raise UserFacingError("Choose the segmentation (or label map) that marks the region to protect.")
    low, high = engineSettings.BUDGET_STEPS
    if request.epsilonSteps is not None and not low <= int(request.epsilonSteps) <= high:
        raise UserFacingError(f"Budget {request.epsilonSteps}/{high} is outside {low}/{high} to {high}/{high}.")
    if request.markOnly and request.markKeyPath is None:
        raise UserFacingError("'Mark only' needs a key file: tick Mark and choose your key.")
    if request.markKeyPath is not None and not Path(request.markKeyPath).is_file():
        raise UserFacingError(f"Key file '{request.markKeyPath}' does not exist; create one with 'umed-protect keygen "
                              "--out owner.key' or untick Mark.")
    if request.profilePath is not None and not Path(request.profilePath).is_file():
        raise UserFacingError(f"Protection profile '{request.profilePath}' does not exist; choose a file or untick it.")


class ProtectJob:
    """Files and steps of one run; cleanup() removes its temporary folder."""

    def __init__(self, request: ProtectRequest, workFolder: Optional[Path] = None):
        self.request = request
        self.workFolder = Path(workFolder) if workFolder else Path(tempfile.mkdtemp(prefix="UMedProtect-"))
        self.workFolder.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        """A file inside the work folder."""
        return self.workFolder / name

    def prepare(self) -> ProtectCommand:
        """Check the inputs, write image and label map (on the image grid) as NRRD, return the engine command."""
        request = self.request
        validateRequest(request)
        source = request.labelSourceNode
        # One conversion both checks the region and grids (with a message the user understands) and is written.
        with RemoveAddedNodes(source.GetScene()):
            labelmapNode = labelmapNodeOnVolumeGrid(request.volumeNode, source, request.segmentIds)
            writeVolumeNode(labelmapNode, self.path("label.nrrd"))
        writeVolumeNode(request.volumeNode, self.path("image.nrrd"))
        # An exported segmentation holds only the chosen segments, as values 1..n: every label is wanted.
        labels = "" if source.IsA("vtkMRMLSegmentationNode") else request.labelValues.strip()
        return ProtectCommand(
            image=self.path("image.nrrd"), label=self.path("label.nrrd"), output=self.path("protected.nrrd"),
            difference=self.path("difference.nrrd"), report=self.path("report.json"),
            settings=request.settings(request.window or self.overrideWindow(), labels),
            profile=Path(request.profilePath) if request.profilePath else None,
            mark=Path(request.markKeyPath) if request.markKeyPath else None)

    def overrideWindow(self) -> str:
        """The display window an override is a share of; none for the default, which the engine picks as the CLI."""
        return "" if self.request.epsilonSteps is None else windowArgument(displayWindow(self.request.volumeNode))

    def loadResults(self) -> ProtectResults:
        """Create the result nodes from the engine's files; on any failure the scene is left as it was."""
        volume = self.request.volumeNode
        scene = volume.GetScene()
        try:
            report = json.loads(self.path("report.json").read_text(encoding="utf-8"))
            protectedArray, protectedGeometry = readVolumeArray(self.path("protected.nrrd"))
            differenceArray, _ = readVolumeArray(self.path("difference.nrrd"))
        except (OSError, ValueError) as error:
            raise UserFacingError(f"The engine finished but its results could not be read ({error}).") from error
        if not np.allclose(protectedGeometry, ijkToRasMatrix(volume), atol=1e-3):
            raise UserFacingError("The engine returned a volume whose geometry differs from the input; nothing was "
                                  "added.")
        before = nodeIds(scene)
        try:
            protectedNode = createProtectedVolume(volume, protectedArray)
            protectedNode.SetAttribute(REPORT_ATTRIBUTE, json.dumps(report))
            budget = float(report.get("epsilon_native") or 0.0)
            differenceNode = createDifferenceVolume(volume, differenceArray, budget)
            table = createMetricsTable(scene, report, f"{volume.GetName()} protection metrics")
        except Exception:
            # Leave the scene exactly as it was: drop every node this attempt added.
            with RemoveAddedNodes(scene, since=before):
                pass
            raise
        return ProtectResults(protectedNode, differenceNode, table, report)

    def cleanup(self) -> None:
        """Delete the temporary folder and everything in it."""
        shutil.rmtree(self.workFolder, ignore_errors=True)
