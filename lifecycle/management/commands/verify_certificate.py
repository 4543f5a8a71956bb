"""`manage.py verify_certificate <file.json> (--public-key B64 | --key-url URL [--token FILE])`:
check a saved deletion certificate offline against the organization's published key. Exits 1
when it was altered or the signature does not verify under that key, 2 when no key is pinned."""

from __future__ import annotations

from lifecycle.management.signed_file import VerifySignedFileCommand
from lifecycle.services import certificate_verify


class Command(VerifySignedFileCommand):
    help = (
        "Verify a saved deletion certificate (canonical form, sha256 and Ed25519 signature) "
        "against the organization's published key, offline."
    )
    file_help = "The certificate JSON as served by the API."

    def verify(self, raw: bytes, *, public_key: str) -> tuple[bool, str]:
        return certificate_verify(raw, public_key=public_key)
