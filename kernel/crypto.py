"""Master-key sealing for secrets at rest (storage credentials, signing keys, dataset keys).

Sealed values are `version byte || 12-byte nonce || AES-256-GCM ciphertext+tag`, bound to a
purpose string (the AAD) so a value sealed for one field cannot be replayed into another.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

_VERSION = b"\x01"
_NONCE_BYTES = 12
_lock = threading.Lock()
_cached: bytes | None = None


class SealError(Exception):
    """A sealed value could not be opened: wrong master key, wrong purpose or tampering."""


def _decode(value: str, origin: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"{origin} must be base64 of 32 random bytes.") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"{origin} must decode to 32 bytes, not {len(key)}.")
    return key


def _load_or_create(path: Path) -> bytes:
    if path.exists():
        return _decode(path.read_text(), f"The master key file {path}")
    if not settings.AGENCYOPS_MASTER_KEY_AUTOCREATE:
        raise ImproperlyConfigured(f"The master key file {path} does not exist.")
    # Embedded default: generate once, readable by the owner only.
    path.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encoded + "\n")
    return _decode(encoded, "The generated master key")


def master_key() -> bytes:
    """The organization-wide key-encryption key, from env, a file, or generated once in var/."""
    global _cached  # process-wide cache of an immutable secret
    if _cached is None:
        with _lock:
            if _cached is None:
                if settings.AGENCYOPS_MASTER_KEY:
                    _cached = _decode(settings.AGENCYOPS_MASTER_KEY, "AGENCYOPS_MASTER_KEY")
                else:
                    _cached = _load_or_create(Path(settings.AGENCYOPS_MASTER_KEY_FILE))
    return _cached


def reset_master_key_cache() -> None:
    """Forget the cached key (tests that switch master keys)."""
    global _cached
    _cached = None


def seal(plaintext: bytes, *, purpose: str) -> bytes:
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(master_key()).encrypt(nonce, plaintext, purpose.encode())
    return _VERSION + nonce + ciphertext


def unseal(sealed: bytes, *, purpose: str) -> bytes:
    if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
        raise SealError("Sealed value is malformed.")
    nonce, ciphertext = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
    try:
        return AESGCM(master_key()).decrypt(nonce, ciphertext, purpose.encode())
    except InvalidTag:
        raise SealError("Sealed value does not open under the current master key.") from None
