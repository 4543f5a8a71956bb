"""Back a dataset up now, in this process, to every target of its policy (or one)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups import services
from backups.management.progress import ProgressBar, human_bytes
from backups.models import RunStatus, Snapshot, Trigger
from clients.models import Dataset, StorageLocation
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Back up a dataset now; prints the snapshot ids (or, with --json, the run as JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("dataset", help="dataset id (UUID)")
        parser.add_argument("--target", help="only this storage location id (UUID)")
        parser.add_argument("--json", action="store_true", help="print the run as JSON last")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        dataset = (
            Dataset.objects.filter(public_id=options["dataset"])
            .select_related("organization", "client", "location")
            .first()
        )
        if dataset is None:
            raise CommandError(f"No dataset {options['dataset']}.")
        protection = services.protection_get(dataset)
        if options["target"]:
            targets = list(
                StorageLocation.objects.filter(
                    organization=dataset.organization, public_id=options["target"]
                )
            )
            if not targets:
                raise CommandError(f"No storage location {options['target']} in this organization.")
        else:
            policy = protection.policy
            targets = (
                [t.location for t in policy.policy_targets.select_related("location")]
                if policy
                else []
            )
        try:
            run = services.backup_run_create(
                dataset=dataset, trigger=Trigger.COMMAND, targets=targets, enqueue=False
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        bar = None if options["no_progress"] or options["json"] else ProgressBar(dataset.name)
        finished = services.backup_run_execute(str(run.public_id), on_progress=bar)
        if bar is not None:
            bar.close()
        assert finished is not None  # noqa: S101  # the run was created above
        snapshots = Snapshot.objects.filter(run=finished).select_related("location")
        if finished.status != RunStatus.SUCCEEDED:
            if options["json"]:
                self.stdout.write(json.dumps(self._as_json(finished, snapshots)))
            raise CommandError(f"Backup failed: {finished.error}")
        if options["json"]:
            self.stdout.write(json.dumps(self._as_json(finished, snapshots)))
            return
        self.stdout.write(
            f"Backed up {finished.files_seen} files, {human_bytes(finished.bytes_seen)} "
            f"({human_bytes(finished.new_bytes)} new) in {finished.duration_seconds or 0:.1f} s."
        )
        for snapshot in snapshots:
            self.stdout.write(f"snapshot {snapshot.public_id} on {snapshot.location.name}")

    def _as_json(self, run: Any, snapshots: Any) -> dict[str, Any]:
        return {
            "id": str(run.public_id),
            "dataset": str(run.dataset.public_id),
            "status": run.status,
            "error": run.error,
            "files": run.files_seen,
            "bytes": run.bytes_seen,
            "new_bytes": run.new_bytes,
            "files_reused": run.files_reused,
            "duration_seconds": run.duration_seconds,
            "snapshots": [
                {
                    "id": str(s.public_id),
                    "target": str(s.location.public_id),
                    "target_name": s.location.name,
                    "taken_at": s.taken_at.isoformat(),
                    "files": s.files,
                    "bytes": s.bytes,
                    "new_bytes": s.new_bytes,
                }
                for s in snapshots
            ],
        }
