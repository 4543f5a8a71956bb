"""`manage.py evidence <client-uuid> --out FILE`: write a client's signed evidence, the same
bytes the API serves, recorded as an evidence read by the system."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients.models import Client
from kernel.tenancy import Actor, parse_public_id
from lifecycle.services import evidence_read


class Command(BaseCommand):
    help = "Write a client's signed evidence (JSON) to a file or standard output."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client", help="The client's id (UUID).")
        parser.add_argument("--out", help="Where to write it (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        public_id = parse_public_id(options["client"])
        # An operator's command reads across organizations: the client id names one.
        client = (
            Client.objects.unscoped_for_system_task()
            .select_related("organization")
            .filter(public_id=public_id)
            .first()
            if public_id is not None
            else None
        )
        if client is None:
            raise CommandError(f"No client with id {options['client']}.")
        signed = evidence_read(
            actor=Actor.system(client.organization), client=client, via="command"
        )
        raw = signed.raw
        if options.get("out"):
            try:
                Path(options["out"]).write_bytes(raw)
            except OSError as exc:
                raise CommandError(f"Cannot write {options['out']}: {exc.strerror}") from None
            count = len(signed.document["inventory"])
            self.stderr.write(f"Wrote the evidence of {client.name} ({count} datasets).")
        else:
            sys.stdout.buffer.write(raw)
