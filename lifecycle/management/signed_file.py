"""The shared shape of the offline verification commands (certificates, evidence): read a saved
file, check it against the organization's published key, exit non-zero when it fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class VerifySignedFileCommand(BaseCommand):
    file_help = "The signed JSON as the API served it."

    def verify(self, raw: bytes, *, public_key: str | None) -> tuple[bool, str]:
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help=self.file_help)
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
        ok, message = self.verify(raw, public_key=options.get("public_key"))
        if not ok:
            raise CommandError(f"INVALID: {message}")
        self.stdout.write(f"OK: {message}")
