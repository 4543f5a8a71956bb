"""`manage.py verify_certificate <file.json> [--public-key B64]`: check a saved deletion
certificate offline. Exits non-zero when it was altered or the signature does not verify."""

from __future__ import annotations

from lifecycle.management.signed_file import VerifySignedFileCommand
from lifecycle.services import certificate_verify


class Command(VerifySignedFileCommand):
    help = "Verify a saved deletion certificate (sha256 and Ed25519 signature), offline."
    file_help = "The certificate JSON as served by the API."

    def verify(self, raw: bytes, *, public_key: str | None) -> tuple[bool, str]:
        return certificate_verify(raw, public_key=public_key)
