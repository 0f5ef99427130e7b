"""UMedProtectLib: the UMed protection engine (no Slicer, no Qt): protect studies against unauthorised training."""

from .engine import ProtectionResult, fit_profile, protect
from .errors import Cancelled, InputError
from .profile import Profile, load_profile, save_profile
from .progress import Progress
from .settings import ProtectSettings

__version__ = "0.1.0"

__all__ = [
    "Cancelled", "InputError", "Profile", "Progress", "ProtectSettings", "ProtectionResult",
    "fit_profile", "load_profile", "protect", "save_profile", "__version__",
]
