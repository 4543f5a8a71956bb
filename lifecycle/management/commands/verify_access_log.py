"""Walk each organization's access-log chain and report the first broken link."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.models import Organization
from lifecycle import services


class Command(BaseCommand):
    help = "Verify the hash chain of the access log (every organization, or one). Exit 1 if broken."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", metavar="SLUG", help="only this organization")

    def handle(self, *args: Any, **options: Any) -> None:
        organizations = Organization.objects.order_by("slug")
        if options["organization"]:
            organizations = organizations.filter(slug=options["organization"])
            if not organizations.exists():
                raise CommandError(f"No organization with slug {options['organization']!r}.")
        broken = []
        for organization in organizations:
            report = services.access_log_verify(organization)
            self.stdout.write(str(report))
            if not report.ok:
                broken.append(report)
        if broken:
            raise CommandError(f"{len(broken)} chain(s) broken.")
