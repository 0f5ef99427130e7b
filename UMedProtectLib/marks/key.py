"""The owner's secret key: 256 random bits in a file only the owner can read; everything else names its fingerprint."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

KEY_BYTES = 32
HEADER = "umed-protect-key-v1"


@dataclass(frozen=True)
class OwnerKey:
    """A secret key; `repr` shows only the fingerprint, so the secret never reaches a log or a traceback."""

    secret: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the secret, hex: public, and reveals nothing of the key."""
        return hashlib.sha256(self.secret).hexdigest()

    def derive(self, purpose: str) -> bytes:
        """32 pseudo-random bytes for `purpose` (HMAC-SHA256): what a mark or an audit draws from the key."""
        return hmac.new(self.secret, purpose.encode("utf-8"), hashlib.sha256).digest()

    def seed(self, purpose: str) -> int:
        """A 64-bit random-generator seed for `purpose`."""
        return int.from_bytes(self.derive(purpose)[:8], "little")

    def __repr__(self) -> str:
        return f"OwnerKey(fingerprint={self.fingerprint[:16]}...)"


def generate_key() -> OwnerKey:
    """A fresh key from the operating system's cryptographic random source."""
    return OwnerKey(secrets.token_bytes(KEY_BYTES))


def write_key(key: OwnerKey, path: Path) -> None:
    """Write `key` to a new file of mode 0600; an existing file (or link) is never replaced."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise InputError(f"key file '{path}' already exists; a key is never overwritten, choose another name") from None
    except OSError as error:
        raise InputError(f"cannot create key file '{path}': {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(f"{HEADER} {key.secret.hex()}\n")


def read_key(path: Path) -> OwnerKey:
    """The key in `path`; a file others can read, or one that is not a key, is refused."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError:
        raise InputError(f"key file '{path}' does not exist; create one with 'umed-protect keygen --out KEY'") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"key '{path}' is not a regular file")
    if info.st_mode & 0o077:
        raise InputError(f"key file '{path}' can be read by others (mode {stat.S_IMODE(info.st_mode):o}); "
                         f"run 'chmod 600 {path}' and keep it secret")
    if info.st_size > 4096:
        raise InputError(f"'{path}' is not a UMedProtect key file")
    words = path.read_text(encoding="ascii", errors="replace").split()
    if len(words) != 2 or words[0] != HEADER or len(words[1]) != 2 * KEY_BYTES:
        raise InputError(f"'{path}' is not a UMedProtect key file")
    try:
        return OwnerKey(bytes.fromhex(words[1]))
    except ValueError:
        raise InputError(f"'{path}' is not a UMedProtect key file") from None
