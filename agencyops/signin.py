"""Sign-in with brute-force throttling.

Failed sign-ins are counted per (username, client address) and per client address alone, in
Django's cache, over a sliding window. Past the limit the form answers 429 with the wait, even
for the right password, so guessing gets nowhere; a success clears that account's counter.
The cache is per process in the embedded setup; production points CACHE_URL at Redis so every
web process shares the counters.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from agencyops.http import request_origin


def _key(*parts: str) -> str:
    # Hashed so usernames (and their odd characters) never become cache keys as such.
    digest = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]
    return f"signin-failures:{digest}"


def _failures(key: str, now: float) -> list[float]:
    window = settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    stamps: list[float] = cache.get(key) or []
    return [t for t in stamps if now - t < window]


def signin_wait_seconds(username: str, address: str, now: float | None = None) -> int:
    """Seconds until this (username, address) may try again; 0 when it may now."""
    now = time.time() if now is None else now
    window = settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    waits = [0.0]
    for key, limit in (
        (_key("account", username.lower(), address), settings.AGENCYOPS_SIGNIN_ACCOUNT_LIMIT),
        (_key("address", address), settings.AGENCYOPS_SIGNIN_ADDRESS_LIMIT),
    ):
        stamps = _failures(key, now)
        if len(stamps) >= limit:
            # Free again once the oldest failure that keeps the count at the limit expires.
            waits.append(sorted(stamps)[-limit] + window - now)
    return max(0, math.ceil(max(waits)))


def signin_failed(username: str, address: str, now: float | None = None) -> None:
    now = time.time() if now is None else now
    window = settings.AGENCYOPS_SIGNIN_WINDOW_SECONDS
    for key in (_key("account", username.lower(), address), _key("address", address)):
        stamps = [*_failures(key, now), now]
        cache.set(key, stamps[-100:], timeout=window)


def signin_succeeded(username: str, address: str) -> None:
    cache.delete(_key("account", username.lower(), address))


class ThrottledLoginView(auth_views.LoginView):
    redirect_authenticated_user = True

    def _who(self) -> tuple[str, str]:
        username = str(self.request.POST.get("username", ""))[:150]
        return username, request_origin(self.request).source_ip or "unknown"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username, address = self._who()
        wait = signin_wait_seconds(username, address)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            form = AuthenticationForm(request)
            response = render(
                request,
                "registration/login.html",
                {
                    "form": form,
                    "throttled": (
                        "Too many failed sign-ins from your address. "
                        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
                    ),
                    "next": request.POST.get("next", ""),
                },
                status=429,
            )
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        signin_failed(*self._who())
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        signin_succeeded(*self._who())
        return super().form_valid(form)
