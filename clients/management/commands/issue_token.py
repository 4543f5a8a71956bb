from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from clients import services
from kernel.exceptions import ApplicationError


class Command(BaseCommand):
    help = "Issue a personal API token. The token is printed alone on the last line, once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="cli token")
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="expiry in days (at most AGENCYOPS_TOKEN_MAX_DAYS; default: "
            "AGENCYOPS_TOKEN_DEFAULT_DAYS)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        try:
            token, raw = services.api_token_issue(
                user=user, name=options["name"], days=options["days"]
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        self.stdout.write(
            f"Token {token.public_id} for {user.username}, expires {token.expires_at:%Y-%m-%d}. "
            "Store it now; it is not shown again."
        )
        self.stdout.write(raw)
