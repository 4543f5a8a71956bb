"""Each request starts in a closed tenant scope: no tenant manager answers until the API base or
the page decorator has built the actor and entered its organization's scope. The operator's
Django admin (a signed-in staff account; tenants are never staff) runs in the system scope,
because the operator is not a tenant."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from kernel.tenancy import closed_scope, system_scope


class TenantScopeMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.admin_prefix = reverse("admin:index")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        operator = (
            request.path.startswith(self.admin_prefix)
            and user is not None
            and user.is_active
            and user.is_staff
        )
        with system_scope() if operator else closed_scope():
            return self.get_response(request)
