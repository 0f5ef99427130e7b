"""Protection profiles: fitted generators saved to a file and applied to new studies without refitting."""

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Tuple, Union

import torch

from ..errors import InputError
from ..settings import ProtectSettings

FORMAT = "umed-protect-profile/1"


def make_perturbation(settings: ProtectSettings) -> torch.nn.Module:
    """A fresh perturbation module of the settings' design."""
    return settings.design_spec.build(settings)


@dataclass
class Profile:
    """The fitted perturbation's weights, the settings it was fitted with and where it came from."""

    settings: ProtectSettings
    state: Dict[str, torch.Tensor]
    info: Dict = field(default_factory=dict)

    @classmethod
    def from_perturbation(cls, perturbation: torch.nn.Module, settings: ProtectSettings, info: Dict) -> "Profile":
        """Snapshot a fitted perturbation (weights copied to the CPU)."""
        state = {k: v.detach().cpu().clone() for k, v in perturbation.state_dict().items()}
        return cls(settings, state, dict(info))

    def applied_to(self, settings: ProtectSettings) -> Tuple[ProtectSettings, List[str]]:
        """The settings a run applying this profile actually uses, and a note for each given one it overrides: the
        masks must be the ones the generators were fitted with (design, carrier), and nothing is fitted (preset,
        iterations, epochs), so a report must neither record those as given nor name another design."""
        notes = []
        if settings.design != self.settings.design:
            notes.append(f"design {settings.design!r} was not used: the profile's generators were fitted for the "
                         f"{self.settings.design!r} design, which was applied")
        fit = {name: getattr(self.settings, name) for name in ("preset", "iterations", "epochs")}
        defaults = ProtectSettings()  # an API caller's untouched defaults were not asked for
        unused = [f"{name} {getattr(settings, name)}" for name, value in fit.items()
                  if getattr(settings, name) not in (value, getattr(defaults, name))]
        if unused:
            notes.append(f"{', '.join(unused)} not used: a profile is applied without fitting")
        return settings.with_changes(design=self.settings.design, carrier_period=self.settings.carrier_period,
                                     **fit), notes

    def perturbation(self) -> torch.nn.Module:
        """A perturbation module with this profile's architecture and weights."""
        module = make_perturbation(self.settings)
        module.load_state_dict(self.state)
        return module.eval()


def save_profile(profile: Profile, path: Union[str, Path]) -> None:
    """Write a profile atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    payload = {"format": FORMAT, "settings": profile.settings.to_dict(), "info": profile.info, "state": profile.state}
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _checked_state(state: object, settings: ProtectSettings, path: Path) -> Dict[str, torch.Tensor]:
    """The weights, if their names and shapes are exactly the ones these settings build and every value is finite.

    The expected shapes come from a module built on the meta device, so that nothing is allocated for them.
    """
    with torch.device("meta"):
        expected = make_perturbation(settings).state_dict()
    if not isinstance(state, dict) or set(state) != set(expected):
        raise InputError(f"{str(path)!r} holds weights that do not fit its own settings; the file is damaged")
    for name, reference in expected.items():
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor) or tensor.shape != reference.shape or tensor.dtype != reference.dtype:
            raise InputError(f"{str(path)!r} holds weights that do not fit its own settings ({name}); the file is "
                             "damaged")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{str(path)!r} holds NaN or infinite weights ({name}); the file is damaged")
    return state


def load_profile(path: Union[str, Path]) -> Profile:
    """Read a profile with torch.load(weights_only=True): tensors and plain data only, never arbitrary code.

    Its settings are held to the same bounds as the command line's and its tensors to the shapes those settings
    give, before any network is built from them.

    Args:
        path: A profile file written by `save_profile` or `umed-protect fit-profile`.

    Returns:
        The `Profile`, its generators checked by building them once.

    Raises:
        InputError: The file is missing, is not a UMedProtect profile, or holds settings or tensors out of bounds.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"profile {str(path)!r} does not exist; create one with `umed-protect fit-profile`")
    try:
        with warnings.catch_warnings():  # torch's notes about the pickle protocol would break the one-line refusal
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"{str(path)!r} is not a readable UMedProtect profile ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{str(path)!r} is not a UMedProtect profile (expected format {FORMAT})")
    info = payload.get("info", {})
    if not isinstance(payload.get("settings"), dict) or not isinstance(info, dict):
        raise InputError(f"{str(path)!r} has no valid settings; the file is damaged")
    try:
        settings = ProtectSettings.from_dict(payload["settings"])
    except (TypeError, ValueError) as error:
        summary = str(error).splitlines()[0] if isinstance(error, InputError) else "a setting of the wrong type"
        raise InputError(f"profile {str(path)!r} has settings the command line would refuse: {summary}") from None
    profile = Profile(settings, _checked_state(payload.get("state"), settings, path), info)
    profile.perturbation()
    return profile
