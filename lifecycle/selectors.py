"""Tenant reads of the lifecycle app, each starting from `visible_to(actor)`."""

from __future__ import annotations

from django.db.models import QuerySet

from agencyops.exceptions import Forbidden
from agencyops.tenancy import Actor
from lifecycle.models import AccessEvent


def access_event_list(*, actor: Actor) -> QuerySet[AccessEvent]:
    """The access log: owners, admins and auditors read all of it; leads the events of their
    granted clients; members read none of it."""
    if actor.role == "member":
        raise Forbidden("Members may not read the access log.")
    return AccessEvent.objects.visible_to(actor).order_by("-seq")
