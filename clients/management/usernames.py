"""What the operator's user commands share."""

from __future__ import annotations

from django.core.management.base import CommandError

from clients import services


def refuse_username_twin(username: str) -> None:
    """Refuse a new username that a person would mistake for an existing login (case, form);
    the operator may be told which login is in the way (a tenant never is)."""
    twin = services.username_twin_get(username=username)
    if twin is not None:
        raise CommandError(
            f"{username!r} would be mistaken for the existing login {twin!r}; "
            f"name {twin!r} or choose another username."
        )
