"""`manage.py backup_self [--location UUID|DIR ...] [--json]`: back AgencyOps' own database up
now, the same run the daily `self_backup_task` makes (see backups/services/selfbackup/)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from backups.management.progress import human_bytes
from backups.services.selfbackup import self_backup_run_by_ids
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = (
        "Back up AgencyOps' own database (and the sealed key material in it) into the self "
        "repository (_agencyops-self/) of each chosen location or operator directory."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--location",
            action="append",
            default=[],
            metavar="UUID|DIR",
            help="a storage location id, or a directory of the operator's (file:///dir or /dir, "
            "outside every local root); repeatable. Default: AGENCYOPS_SELF_BACKUP_LOCATIONS, "
            "else (one organization only) the targets of its records policy",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = self_backup_run_by_ids(options["location"] or None)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict(), indent=2, sort_keys=True))
        else:
            counts = ", ".join(f"{value} {name}" for name, value in result.counts.items())
            self.stdout.write(
                f"Dumped the {result.vendor} database: {human_bytes(result.dump_bytes)} "
                f"(sha256 {result.dump_sha256[:16]}…); {counts}."
            )
            for target in result.targets:
                if target.ok:
                    self.stdout.write(f"  {target.uri}  snapshot {target.snapshot_id}")
                else:
                    self.stdout.write(f"  {target.uri}  FAILED: {target.error}")
        failed = [t.location_name for t in result.targets if not t.ok]
        if failed:
            raise CommandError(f"The self-backup failed on: {', '.join(failed)}.")
