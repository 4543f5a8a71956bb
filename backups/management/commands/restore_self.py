"""`manage.py restore_self --from URI (--list | --snapshot ID) [...]`: rebuild AgencyOps from its
self-backup into the empty database named by DATABASE_URL.

Needs only the master key (AGENCYOPS_MASTER_KEY) and access to the target: S3 credentials come
from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or --access-key-id and
--secret-access-key-file), never from the database, which is what was lost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection

from backups.management.progress import human_bytes
from backups.services.selfbackup import (
    self_repository_open,
    self_restore_check,
    self_restore_load,
    self_snapshots_list,
)
from kernel.exceptions import ApplicationError

_LISTED = ("organizations", "clients", "datasets", "snapshots", "certificates")


class Command(BaseCommand):
    help = (
        "List (--list) or restore (--snapshot ID|latest) AgencyOps' own backups from a target "
        "into the empty database named by DATABASE_URL, then migrate and compare counts."
    )
    # Checks must not need the database: it is empty, or not there yet.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--from",
            dest="source",
            required=True,
            metavar="URI",
            help="file:///dir or s3://bucket/prefix: where the self-backup was written (an "
            "AGENCYOPS_SELF_BACKUP_LOCATIONS directory, or a location's address as shown for "
            "it), or the _agencyops-self folder in it",
        )
        parser.add_argument("--endpoint-url", help="S3 endpoint (MinIO, Wasabi, B2...)")
        parser.add_argument("--region", help="S3 region")
        parser.add_argument("--access-key-id", help="default: AWS_ACCESS_KEY_ID")
        parser.add_argument(
            "--secret-access-key-file",
            help="a file holding the secret key; default: AWS_SECRET_ACCESS_KEY "
            "(never pass a secret as an argument: other users can read process lists)",
        )
        action = parser.add_mutually_exclusive_group(required=True)
        action.add_argument("--list", action="store_true", help="list the self snapshots")
        action.add_argument("--snapshot", help="the snapshot id to restore, or 'latest'")
        parser.add_argument(
            "--force",
            action="store_true",
            help="load even though the database has tables (PostgreSQL: objects in the dump "
            "are dropped first; SQLite: the file is overwritten)",
        )
        parser.add_argument("--json", action="store_true", help="with --list: print JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        secret = None
        if options["secret_access_key_file"]:
            try:
                secret = Path(options["secret_access_key_file"]).read_text().strip()
            except OSError as exc:
                raise CommandError(f"Cannot read the secret key file: {exc.strerror}") from None
        try:
            target = self_repository_open(
                options["source"],
                endpoint_url=options["endpoint_url"] or os.environ.get("AWS_ENDPOINT_URL"),
                region=options["region"],
                access_key_id=options["access_key_id"],
                secret_access_key=secret,
            )
            if options["list"]:
                self._list(target, as_json=options["json"])
            else:
                self._restore(target, options["snapshot"], force=options["force"])
        except ApplicationError as error:
            raise CommandError(error.message) from None

    def _list(self, target: Any, *, as_json: bool) -> None:
        snapshots = self_snapshots_list(target)
        if as_json:
            doc = [
                {"id": s.id, "time": s.time.isoformat(), "bytes": s.bytes, "manifest": s.manifest}
                for s in snapshots
            ]
            self.stdout.write(json.dumps(doc, indent=2, sort_keys=True))
            return
        if not snapshots:
            self.stdout.write("No self-backup snapshots there yet.")
            return
        self.stdout.write("snapshot id | taken (UTC) | size | database | " + " ".join(_LISTED))
        for snapshot in snapshots:
            counts = snapshot.manifest.get("counts", {})
            self.stdout.write(
                f"{snapshot.id} | {snapshot.time:%Y-%m-%d %H:%M:%S} | "
                f"{human_bytes(snapshot.bytes)} | {snapshot.manifest['database']['vendor']} | "
                + " ".join(f"{name}={counts.get(name, '?')}" for name in _LISTED)
            )

    def _restore(self, target: Any, snapshot_id: str, *, force: bool) -> None:
        name = connection.settings_dict["NAME"]
        self.stdout.write(f"Restoring self-backup {snapshot_id} into {connection.vendor} {name}…")
        manifest = self_restore_load(target, snapshot_id, force=force)
        self.stdout.write(
            f"Loaded snapshot {manifest['snapshot_id']} (written {manifest['created_at']} by "
            f"AgencyOps {manifest['agencyops_version']}). Applying newer migrations, if any:"
        )
        call_command("migrate", interactive=False, verbosity=1, stdout=self.stdout)
        checks = self_restore_check(manifest)
        self.stdout.write(f"{'':<22}{'backup':>10}{'restored':>10}")
        for check in checks:
            mark = "ok" if check.ok else "DIFFERS"
            self.stdout.write(
                f"{check.name:<22}{check.expected!s:>10}{check.restored!s:>10}  {mark}"
            )
        differs = [check.name for check in checks if not check.ok]
        if differs:
            raise CommandError(
                f"The restored database differs from the backup in: {', '.join(differs)}."
            )
        self.stdout.write(
            self.style.SUCCESS(
                "Restored: the database matches the self-backup. Start the web server, worker "
                "and beat against it."
            )
        )
