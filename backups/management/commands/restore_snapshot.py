"""Restore a snapshot into a local directory, verifying every file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.management.progress import ProgressBar, human_bytes
from backups.models import RunStatus, Snapshot
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Restore a snapshot to a directory (every file's sha256 is checked)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("snapshot", help="snapshot id (UUID)")
        parser.add_argument("--to", required=True, help="destination directory")
        parser.add_argument("--path", default="", help="restore only this file or directory")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        snapshot = (
            Snapshot.objects.filter(public_id=options["snapshot"])
            .select_related("dataset", "location")
            .first()
        )
        if snapshot is None:
            raise CommandError(f"No snapshot {options['snapshot']}.")
        try:
            restore = services.restore_request(
                actor=None,
                snapshot=snapshot,
                destination_path=str(Path(options["to"]).resolve()),
                path_prefix=options["path"],
                enqueue=False,
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        bar = None if options["no_progress"] else ProgressBar(snapshot.dataset.name)
        finished = services.restore_run_execute(str(restore.public_id), on_progress=bar)
        if bar is not None:
            bar.close()
        if finished is None or finished.status != RunStatus.SUCCEEDED:
            raise CommandError(f"Restore failed: {finished.error if finished else 'unknown'}")
        self.stdout.write(
            f"Restored {finished.files} files, {human_bytes(finished.bytes)}, verified, to "
            f"{finished.destination_path} in {finished.duration_seconds or 0:.1f} s."
        )
