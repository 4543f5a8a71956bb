"""Page plumbing: the actor of a signed-in user, for views and templates."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from kernel.exceptions import ApplicationError, NotFound
from kernel.tenancy import Actor, actor_for_user, organization_scope


class TenantHttpRequest(HttpRequest):
    """A page's request inside `tenant_page`: its actor is known. Page views take this type."""

    actor: Actor


def tenant_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Log-in required; builds `request.actor`; maps application errors to readable pages."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        actor = actor_for_user(request.user)
        if actor is None:
            return render(
                request,
                "error.html",
                {"title": "No organization", "message": "Your account belongs to no organization."},
                status=403,
            )
        return page_as(actor, view, request, *args, **kwargs)

    return wrapper


def page_as(
    actor: Actor, view: Callable[..., HttpResponse], request: HttpRequest, *args: Any, **kwargs: Any
) -> HttpResponse:
    """Runs a page view as `actor` (a user's, or a procurement token's): inside the actor's
    organization scope, with application errors as readable pages."""
    cast(TenantHttpRequest, request).actor = actor  # read by views and templates
    try:
        with organization_scope(actor.organization_id):
            return view(request, *args, **kwargs)
    except NotFound:
        raise Http404 from None
    except ApplicationError as error:
        return render(
            request,
            "error.html",
            {"title": _ERROR_TITLES.get(error.status, "Cannot be done"), "message": error.message},
            status=error.status,
        )


# The error page's heading says what kind of refusal it is; the message says why.
_ERROR_TITLES = {400: "Cannot be done as asked", 403: "Not allowed", 409: "Cannot be done now"}


def actor_context(request: HttpRequest) -> dict[str, Any]:
    actor: Actor | None = getattr(request, "actor", None)
    return {"actor": actor}
