"""The organization's Ed25519 signing key and the canonical JSON it signs.

Certificates and evidence documents are signed the same way: the canonical JSON of the document
(sorted keys, no whitespace, UTF-8 without escaping) signed with the organization's key, whose
private half is sealed under the master key. Anyone holding the public key (GET
/api/v1/signing-key/) checks a signature offline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.db import IntegrityError, transaction

from clients.models import Organization
from kernel.crypto import seal, unseal
from lifecycle.models import SigningKey

ALGORITHM = "Ed25519"


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8: one byte string per document."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _purpose(organization: Organization) -> str:
    return f"signing-key:{organization.public_id}"


def signing_key_ensure(organization: Organization) -> SigningKey:
    """The organization's signing key, generated on first use; idempotent under races."""
    existing = SigningKey.objects.filter(organization=organization).first()
    if existing is not None:
        return existing
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes_raw()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        with transaction.atomic():
            return SigningKey.objects.create(
                organization=organization,
                public_key=base64.b64encode(public).decode(),
                private_sealed=seal(raw_private, purpose=_purpose(organization)),
            )
    except IntegrityError:
        return SigningKey.objects.get(organization=organization)


def sign(organization: Organization, message: bytes) -> tuple[str, str]:
    """Sign `message` with the organization's key: (signature, public key), both base64."""
    key = signing_key_ensure(organization)
    raw = unseal(bytes(key.private_sealed), purpose=_purpose(organization))
    signature = Ed25519PrivateKey.from_private_bytes(raw).sign(message)
    return base64.b64encode(signature).decode(), key.public_key


def signature_verify(public_key: str, signature: str, message: bytes) -> bool:
    """Whether `signature` (base64) over `message` verifies under `public_key` (raw, base64)."""
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key, validate=True))
        key.verify(base64.b64decode(signature, validate=True), message)
    except (InvalidSignature, ValueError, binascii.Error, TypeError):
        return False
    return True


def key_fingerprint(public_key: str) -> str:
    """The key's id: sha256 of the raw public key, hex — short enough to read over the phone
    (its first 16 characters), long enough to pin."""
    try:
        raw = base64.b64decode(public_key, validate=True)
    except (ValueError, binascii.Error):
        raw = public_key.encode()
    return hashlib.sha256(raw).hexdigest()
