"""`manage.py verify_evidence <file.json> [--public-key B64]`: check saved evidence offline.
Exits non-zero when the file was altered or the signature does not verify."""

from __future__ import annotations

from lifecycle.management.signed_file import VerifySignedFileCommand
from lifecycle.services import evidence_verify


class Command(VerifySignedFileCommand):
    help = "Verify saved procurement evidence (canonical form and Ed25519 signature), offline."
    file_help = "The evidence JSON, saved as the API served it."

    def verify(self, raw: bytes, *, public_key: str | None) -> tuple[bool, str]:
        return evidence_verify(raw, public_key=public_key)
