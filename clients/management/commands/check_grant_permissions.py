"""Prove that no django-guardian row outlives the grant it was written for."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients import services


class Command(BaseCommand):
    help = (
        "List guardian object permissions on clients and datasets that no active grant explains; "
        "exit non-zero if there is any. --fix removes them (re-syncs each target)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--fix", action="store_true", help="remove the orphaned rows")

    def handle(self, *args: Any, **options: Any) -> None:
        orphans = services.grant_permission_orphans()
        if not orphans:
            self.stdout.write("OK: every guardian row is backed by an active grant.")
            return
        for orphan in orphans:
            self.stdout.write(f"orphan: {orphan}")
        if options["fix"]:
            fixed = services.grant_permission_orphans_remove(orphans)
            self.stdout.write(f"removed {fixed} orphaned row(s)")
            return
        raise CommandError(f"{len(orphans)} guardian row(s) without an active grant.")
