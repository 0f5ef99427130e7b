"""Protection profiles: fitted generators saved to a file and applied to new studies without refitting."""

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Union

import torch

from .errors import InputError
from .perturbation import UMedPerturbation, make_perturbation
from .settings import ProtectSettings

FORMAT = "umed-protect-profile/1"


@dataclass
class Profile:
    """The fitted perturbation's weights, the settings it was fitted with and where it came from."""

    settings: ProtectSettings
    state: Dict[str, torch.Tensor]
    info: Dict = field(default_factory=dict)

    @classmethod
    def from_perturbation(cls, perturbation: UMedPerturbation, settings: ProtectSettings, info: Dict) -> "Profile":
        """Snapshot a fitted perturbation (weights copied to the CPU)."""
        state = {k: v.detach().cpu().clone() for k, v in perturbation.state_dict().items()}
        return cls(settings, state, dict(info))

    def perturbation(self) -> UMedPerturbation:
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


def load_profile(path: Union[str, Path]) -> Profile:
    """Read a profile with torch.load(weights_only=True): tensors and plain data only, never arbitrary code."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"profile {str(path)!r} does not exist; create one with `umed-protect fit-profile`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"{str(path)!r} is not a readable UMedProtect profile ({type(error).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{str(path)!r} is not a UMedProtect profile (expected format {FORMAT})")
    profile = Profile(ProtectSettings.from_dict(payload["settings"]), payload["state"], payload.get("info", {}))
    try:
        profile.perturbation()
    except RuntimeError:
        raise InputError(f"{str(path)!r} holds weights that do not fit its own settings; the file is damaged") from None
    return profile
