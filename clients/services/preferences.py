"""A person's own preferences: the time zone the pages show dates in."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from clients.models import UserPreferences
from clients.services.common import validated_save

DEFAULT_TIME_ZONE = "UTC"


def user_time_zone(*, user: Any) -> str:
    """The zone a signed-in user's pages use (UTC until they choose one). Reads, never writes."""
    zone = (
        UserPreferences.objects.filter(user_id=user.pk).values_list("time_zone", flat=True).first()
    )
    return zone or DEFAULT_TIME_ZONE


@transaction.atomic
def user_time_zone_set(*, user: Any, time_zone: str) -> UserPreferences:
    """Set the user's time zone: one of the IANA zones this machine knows (zoneinfo)."""
    preferences = UserPreferences.objects.filter(user_id=user.pk).first() or UserPreferences(
        user=user
    )
    preferences.time_zone = time_zone
    return validated_save(preferences)
