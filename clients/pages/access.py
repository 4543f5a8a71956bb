"""Access review: every grant the caller may see, with revoke in place; new grants; and the
grant requests owners and admins approve or reject."""

from __future__ import annotations

from typing import Any, cast
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Case, IntegerField, Value, When
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clients import selectors, services
from clients.models import GrantQuerySet, GrantRequestStatus
from clients.pages.forms import GrantDecisionForm, GrantForm
from kernel.exceptions import ApplicationError, Conflict
from kernel.forms import form_refusal
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404

DECIDED_SHOWN = 50  # the latest decided requests shown under the pending ones


@tenant_page
def grant_list(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    grants = (
        cast(GrantQuerySet, selectors.grant_list(actor=actor))
        .active(timezone.now())
        .order_by("expires_at", "grantee__username", "id")
    )
    context = {"grants": grants, "can_manage": actor.is_admin}
    return render(request, "clients/settings/grant_list.html", context)


@tenant_page
def grant_new(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    actor.require_admin("grant access")
    form = GrantForm(request.POST or None, actor=actor)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                grant = services.grant_create(actor=actor, **form.cleaned_data)
            except (ValidationError, ApplicationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(
                    request,
                    f"{grant.grantee.username} may now {grant.get_permission_display().lower()} "
                    f"{grant.dataset or grant.client}.",
                )
                return redirect("grant-list")
    return render(request, "clients/settings/grant_form.html", {"form": form}, status=status)


@require_POST
@tenant_page
def grant_revoke(request: TenantHttpRequest, grant_id: UUID) -> HttpResponse:
    actor = request.actor
    grant = get_visible_or_404(selectors.grant_list(actor=actor), grant_id)
    try:
        services.grant_revoke(actor=actor, grant=grant)
    except Conflict as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Revoked {grant.grantee.username}'s access to {grant.client}.")
    return redirect("grant-list")


@tenant_page
def grant_request_list(request: TenantHttpRequest) -> HttpResponse:
    return _grant_request_page(request)


def _grant_request_page(
    request: TenantHttpRequest, *, refused: dict[str, Any] | None = None, status: int = 200
) -> HttpResponse:
    actor = request.actor
    requests = selectors.grant_request_list(actor=actor)
    pending = requests.filter(status=GrantRequestStatus.PENDING).order_by("created_at", "id")
    decided = (
        requests.exclude(status=GrantRequestStatus.PENDING)
        .annotate(
            _order=Case(
                When(decided_at=None, then=Value(1)), default=Value(0), output_field=IntegerField()
            )
        )
        .order_by("_order", "-decided_at", "-id")[:DECIDED_SHOWN]
    )
    context = {
        "pending": pending,
        "decided": decided,
        "can_decide": actor.is_admin,
        "refused": refused or {},
    }
    return render(request, "clients/settings/grant_request_list.html", context, status=status)


@require_POST
@tenant_page
def grant_request_decide(request: TenantHttpRequest, grant_request_id: UUID) -> HttpResponse:
    actor = request.actor
    target = get_visible_or_404(selectors.grant_request_list(actor=actor), grant_request_id)
    # The right before the form: who may not decide is refused, not told its errors.
    actor.require_admin("decide grant requests")
    form = GrantDecisionForm(request.POST)
    if not form.is_valid():
        return render(
            request,
            "error.html",
            {"title": "Nothing decided", "message": "Choose approve or reject."},
            status=400,
        )
    decide = (
        services.grant_request_approve
        if form.cleaned_data["decision"] == "approve"
        else services.grant_request_reject
    )
    try:
        done = decide(actor=actor, request=target, note=form.cleaned_data["comment"])
    except ApplicationError as error:
        if error.status == 404:
            raise
        # Own request, already decided, too long: said at the top and, while the request is
        # still pending, on its row with the typed comment kept.
        messages.error(request, error.message)
        refused = {
            "id": target.public_id,
            "comment": form.cleaned_data["comment"],
            "message": error.message,
        }
        return _grant_request_page(request, refused=refused, status=error.status)
    else:
        messages.success(
            request,
            f"{done.requested_by.username}'s request was {done.get_status_display().lower()}.",
        )
    return redirect("grant-request-list")
