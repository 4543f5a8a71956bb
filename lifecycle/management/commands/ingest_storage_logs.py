"""Import S3 server access logs into the access log (what the periodic task does), or register
where a location's logs are delivered."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.models import Organization, StorageLocation
from kernel.tenancy import Actor
from lifecycle import services


class Command(BaseCommand):
    help = (
        "Import storage access logs. With --location UUID --prefix P, first register that the "
        "location holds delivered logs under P."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--organization", metavar="SLUG")
        parser.add_argument("--location", metavar="UUID", help="the location logs land in")
        parser.add_argument("--prefix", default="", help="key prefix of the delivered logs")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = None
        if options["organization"]:
            organization = Organization.objects.filter(slug=options["organization"]).first()
            if organization is None:
                raise CommandError(f"No organization with slug {options['organization']!r}.")
        if options["location"]:
            location = StorageLocation.objects.filter(public_id=options["location"]).first()
            if location is None:
                raise CommandError("No such location.")
            services.storage_log_source_create(
                actor=Actor.system(location.organization),
                location=location,
                prefix=options["prefix"],
            )
        reports = services.storage_logs_ingest_all(
            organization.pk if organization is not None else None
        )
        for name, report in reports.items():
            self.stdout.write(
                f"{name}: {report.objects} new log object(s), {report.skipped_objects} already "
                f"imported, {report.lines} line(s), {report.events} event(s), "
                f"{report.unmatched} outside any dataset, {report.malformed} malformed"
            )
            for error in report.errors:
                self.stderr.write(f"  error: {error}")
