from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients import services
from clients.management.usernames import refuse_username_twin
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Create an organization and its owner (the user is created if needed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", required=True, help="username of the first owner")
        parser.add_argument("--slug", default="")
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        owner = user_model.objects.filter(username=options["owner"]).first()
        if owner is None:
            refuse_username_twin(options["owner"])
        password = None
        try:
            if owner is None:
                owner, password = services.user_create(
                    username=options["owner"], email=options["email"]
                )
            organization = services.organization_create(
                name=options["name"], owner=owner, slug=options["slug"]
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"Organization {organization.name} ({organization.slug}) created.")
        if password:
            self.stdout.write(f"Owner {owner.username} password (shown once): {password}")
