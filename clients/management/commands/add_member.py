from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients import services
from clients.management.usernames import refuse_username_twin
from clients.models import Organization, Role
from kernel.exceptions import ApplicationError
from kernel.tenancy import Actor


class Command(BaseCommand):
    help = "Add a user (created if needed) to an organization with a role."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("organization", help="organization slug")
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=[r.value for r in Role])
        parser.add_argument("--email", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        organization = Organization.objects.filter(slug=options["organization"]).first()
        if organization is None:
            raise CommandError(f"No organization with slug {options['organization']!r}.")
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            refuse_username_twin(options["username"])
        password = None
        try:
            if user is None:
                user, password = services.user_create(
                    username=options["username"], email=options["email"]
                )
            services.membership_add(
                actor=Actor.system(organization), user=user, role=options["role"]
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"{user.username} is now {options['role']} of {organization.name}.")
        if password:
            self.stdout.write(f"Password (shown once): {password}")
