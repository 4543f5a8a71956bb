"""Sign-in with brute-force throttling.

Failed sign-ins are counted per (username, client address) and per client address alone, in
Django's cache, over a sliding window. Past the limit the form answers 429 with the wait, even
for the right password, so guessing gets nowhere; a success clears that account's counter.
The cache is per process in the embedded setup; production points CACHE_URL at Redis so every
web process shares the counters. Django admin's sign-in (`/admin/login/`) runs through the same
view and counters.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from kernel.http import request_origin


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
    # The page answered with 429: the login page with the wait, never a check of the password.
    throttled_template_name = "registration/login.html"

    def _who(self) -> tuple[str, str]:
        username = str(self.request.POST.get("username", ""))[:150]
        return username, request_origin(self.request).source_ip or "unknown"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        username, address = self._who()
        wait = signin_wait_seconds(username, address)
        if wait:
            minutes = max(1, math.ceil(wait / 60))
            context = self.get_context_data(
                form=self.get_form_class()(request),
                throttled=(
                    "Too many failed sign-ins from your address. "
                    f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
                ),
            )
            response = render(request, self.throttled_template_name, context, status=429)
            response["Retry-After"] = str(wait)
            return response
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: AuthenticationForm) -> HttpResponse:
        signin_failed(*self._who())
        return super().form_invalid(form)

    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        signin_succeeded(*self._who())
        return super().form_valid(form)


class ThrottledAdminLoginView(ThrottledLoginView):
    """`/admin/login/`: Django admin's sign-in (its form, which also refuses non-staff, and its
    page) under the same counters as `/login/`, so the admin is no way around the throttle.
    Failures are recorded as access events the same way: by the `user_login_failed` signal
    that `authenticate` sends."""

    authentication_form = AdminAuthenticationForm
    template_name = "admin/login.html"
    throttled_template_name = "admin/login_throttled.html"
    # A signed-in user without admin access sees the form (and why), as in Django's own view;
    # redirecting them would loop back here.
    redirect_authenticated_user = False

    @method_decorator(never_cache)
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        site = admin.site
        if request.method == "GET" and site.has_permission(request):
            return HttpResponseRedirect(reverse("admin:index", current_app=site.name))
        # What AdminSite.login gives its template.
        context: dict[str, Any] = {
            **site.each_context(request),
            "title": _("Log in"),
            "subtitle": None,
            "app_path": request.get_full_path(),
            "username": request.user.get_username(),
        }
        if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
            context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
        self.extra_context = context
        request.current_app = site.name  # read by the admin's templates to reverse its urls
        return super().dispatch(request, *args, **kwargs)
