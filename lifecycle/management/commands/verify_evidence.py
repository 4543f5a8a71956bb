"""`manage.py verify_evidence <file.json> (--public-key B64 | --key-url URL [--token FILE])`:
check saved evidence offline against the organization's published key. Exits 1 when the file
was altered or the signature does not verify under that key, 2 when no key is pinned."""

from __future__ import annotations

from lifecycle.management.signed_file import VerifySignedFileCommand
from lifecycle.services import evidence_verify


class Command(VerifySignedFileCommand):
    help = (
        "Verify saved procurement evidence (canonical form and Ed25519 signature) against "
        "the organization's published key, offline."
    )
    file_help = "The evidence JSON, saved as the API served it."

    def verify(self, raw: bytes, *, public_key: str) -> tuple[bool, str]:
        return evidence_verify(raw, public_key=public_key)
