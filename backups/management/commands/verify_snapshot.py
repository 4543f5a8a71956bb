"""Authenticate a snapshot's chunks: all of them, or a random subset like restic's check."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.models import Snapshot
from backups.storage import StorageError
from kernel.exceptions import ApplicationError


def _fraction(text: str) -> float:
    value = text.strip()
    percent = value.endswith("%")
    try:
        number = float(value.rstrip("%"))
    except ValueError:
        raise CommandError(
            f"--read-data-subset takes a percentage like 10%, not {text!r}."
        ) from None
    fraction = number / 100 if percent or number > 1 else number
    if not 0 <= fraction <= 1:
        raise CommandError("--read-data-subset must be between 0% and 100%.")
    return fraction


class Command(BaseCommand):
    help = "Check that a snapshot's chunks exist and decrypt (all, or --read-data-subset N%)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("snapshot", help="snapshot id (UUID)")
        parser.add_argument("--read-data-subset", default="100%", help="share of chunks to read")

    def handle(self, *args: Any, **options: Any) -> None:
        fraction = _fraction(options["read_data_subset"])
        snapshot = (
            Snapshot.objects.filter(public_id=options["snapshot"])
            .select_related("dataset", "dataset__organization", "dataset__client", "location")
            .first()
        )
        if snapshot is None:
            raise CommandError(f"No snapshot {options['snapshot']}.")
        try:
            report = services.snapshot_verify(snapshot, read_data_subset=fraction)
        except (ApplicationError, StorageError) as error:
            raise CommandError(f"Verify failed: {error}") from None
        self.stdout.write(
            f"{report.files} files, {report.chunks_referenced} chunks referenced, "
            f"{report.chunks_read} read and authenticated."
        )
        if not report.ok:
            raise CommandError(
                f"Snapshot damaged: {len(report.missing)} missing, {len(report.corrupt)} corrupt "
                f"chunks; files affected: {', '.join(report.damaged_files[:10])}"
            )
        self.stdout.write("OK: no missing or corrupt chunks.")
