"""`manage.py verify_evidence <file.json> [--public-key B64]`: check saved evidence offline.
Exits non-zero when the file was altered or the signature does not verify."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from lifecycle.services import evidence_verify


class Command(BaseCommand):
    help = "Verify saved procurement evidence (canonical form and Ed25519 signature), offline."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The evidence JSON, saved as the API served it.")
        parser.add_argument(
            "--public-key",
            help="The organization's published key (GET /api/v1/signing-key/); without it the "
            "key inside the file is used, which proves integrity but not who signed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            raw = Path(options["file"]).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}") from None
        ok, message = evidence_verify(raw, public_key=options.get("public_key"))
        if not ok:
            raise CommandError(f"INVALID: {message}")
        self.stdout.write(f"OK: {message}")
