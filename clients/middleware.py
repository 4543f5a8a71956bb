"""Dates on pages in the viewer's own time zone (stored times stay UTC)."""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from clients.services import user_time_zone

# The zone is read once per session and kept in it: the pages' hot path pays no query for it.
# The account page updates it; another browser signed in as the same user sees a change at
# its next sign-in.
SESSION_TIME_ZONE = "time_zone"


class UserTimeZoneMiddleware:
    """For a signed-in user, activates the zone they chose (`UserPreferences`); else UTC.
    After AuthenticationMiddleware, which sets request.user."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = "UTC"
        if user is not None and user.is_authenticated:
            session = getattr(request, "session", None)
            kept = session.get(SESSION_TIME_ZONE) if session is not None else None
            if isinstance(kept, str):
                zone = kept
            else:
                zone = user_time_zone(user=user)
                if session is not None:
                    session[SESSION_TIME_ZONE] = zone
        try:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            timezone.activate(zoneinfo.ZoneInfo("UTC"))  # a zone this machine no longer knows
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
