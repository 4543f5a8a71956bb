"""Dates on pages in the viewer's own time zone (stored times stay UTC)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from clients.services import user_time_zone


class UserTimeZoneMiddleware:
    """For a signed-in user, activates the zone they chose (`UserPreferences`); else UTC.
    After AuthenticationMiddleware, which sets request.user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = "UTC"
        if user is not None and user.is_authenticated:
            zone = user_time_zone(user=user)
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo("UTC"))  # a zone this machine no longer knows
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
