"""Deletions in pages: ask for one with its plan previewed, the approvals queue, a request's
page (decide, or be told why not), and the client page's "End engagement"."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clients.selectors import client_get, client_list, dataset_get, dataset_list, engagement_list
from kernel.exceptions import ApplicationError, LegalHoldActive
from kernel.forms import form_refusal
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404
from lifecycle import selectors, services
from lifecycle.models import DeletionRequest, DeletionState
from lifecycle.pages.forms import DecisionForm, DeletionRequestForm, EngagementEndForm
from lifecycle.services.deletion.common import request_datasets


@tenant_page
def deletion_queue(request: TenantHttpRequest) -> HttpResponse:
    """Admins: requests awaiting approval with their plan and counts; everyone: the rest."""
    actor = request.actor
    requests = selectors.deletion_request_list(actor=actor)
    context = {
        "awaiting": [r for r in requests if r.state == DeletionState.DRAFTED],
        "others": [r for r in requests if r.state != DeletionState.DRAFTED][:100],
    }
    return render(request, "lifecycle/deletion_queue.html", context)


def _plan_rows(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan as the pages show it: dataset names instead of ids."""
    names = {d["id"]: d["name"] for d in plan.get("datasets", [])}
    return {
        "locations": [
            {**e, "dataset_name": names.get(e["dataset"], "?")} for e in plan.get("locations", [])
        ],
        "copies": [
            {**c, "dataset_name": names.get(c["dataset"], "?")} for c in plan.get("copies", [])
        ],
    }


@tenant_page
def deletion_request_new(request: TenantHttpRequest) -> HttpResponse:
    """`?client=<id>[&engagement=<id>|&dataset=<id>]`: the plan of that scope previewed (the
    same planning the request will carry), and the form to ask for it. Without a client: the
    clients to choose from."""
    actor = request.actor
    if not request.GET.get("client"):
        return render(
            request, "lifecycle/deletion_new.html", {"clients": list(client_list(actor=actor))}
        )
    client = client_get(actor=actor, public_id=request.GET["client"])
    engagement = (
        get_visible_or_404(
            engagement_list(actor=actor).filter(client=client), request.GET["engagement"]
        )
        if request.GET.get("engagement")
        else None
    )
    dataset = (
        dataset_get(actor=actor, public_id=request.GET["dataset"])
        if request.GET.get("dataset")
        else None
    )
    form = DeletionRequestForm(request.POST or None)
    status = 200
    drop = bool(request.POST.get("drop_primary_databases") or request.GET.get("drop"))
    if request.method == "POST" and form.is_valid():
        try:
            created = services.deletion_request_create(
                actor=actor,
                client=client,
                engagement=engagement if dataset is None else None,
                dataset=dataset,
                reason=form.cleaned_data["reason"],
                drop_primary_databases=form.cleaned_data["drop_primary_databases"],
            )
        except ApplicationError as error:
            status = form_refusal(form, error)
        else:
            messages.success(request, "Deletion requested: another admin approves it.")
            return redirect("deletion-request-page", request_id=created.public_id)
    elif request.method == "POST":
        status = 400

    # The preview: the plan this scope would carry now (refusals such as "nothing left" or
    # "no permission" answer as they would for the request).
    def preview(drop_primary_databases: bool) -> dict[str, Any]:
        return services.deletion_plan_preview(
            actor=actor,
            client=client,
            engagement=engagement if dataset is None else None,
            dataset=dataset,
            drop_primary_databases=drop_primary_databases,
        )

    try:
        plan = preview(drop)
    except ApplicationError:
        if not drop:
            raise
        # Nothing to drop in this scope: the form says so; the preview is the plain plan.
        drop = False
        plan = preview(False)
    scope_datasets = [d["id"] for d in plan["datasets"]]
    context = {
        "client": client,
        "engagement": engagement,
        "dataset": dataset,
        "form": form,
        "plan": plan,
        "rows": _plan_rows(plan),
        "drop": drop,
        # The client's own databases in this scope: the option to drop them is offered.
        "can_drop": any("database" in p for p in plan.get("primaries_kept", [])),
        "holds": selectors.legal_hold_active_list(
            actor=actor,
            client=client,
            datasets=list(dataset_list(actor=actor).filter(public_id__in=scope_datasets)),
        ),
    }
    return render(request, "lifecycle/deletion_new.html", context, status=status)


def _why_not_decide(actor: Any, target: DeletionRequest) -> str:
    """What the page says instead of the buttons: the same refusals the services make."""
    if target.state != DeletionState.DRAFTED:
        return ""
    if not actor.is_admin:
        return "Only admins approve or reject deletions."
    if target.requested_by_id is not None and target.requested_by_id == actor.user_id:
        return "You requested this deletion; another admin must approve it (four eyes)."
    if any(a.decided_by_id == actor.user_id for a in target.approvals.all()):
        return "You approved this deletion; another admin must approve it too."
    return ""


@tenant_page
def deletion_request_detail(request: TenantHttpRequest, request_id: UUID) -> HttpResponse:
    """The plan, the decisions, progress while executing, the verification and certificate.
    POST `decision=approve|reject` with a comment decides (admins, never the requester); a
    refusal (a legal hold, the state, the same admin twice) re-renders the page with the
    message and the comment as typed."""
    actor = request.actor
    target = selectors.deletion_request_get(actor=actor, public_id=request_id)
    form = DecisionForm(request.POST or None)
    status = 200
    blocked_by_hold = False
    if request.method == "POST":
        decision = request.POST.get("decision")
        if form.is_valid() and decision in ("approve", "reject"):
            comment = form.cleaned_data["comment"]
            try:
                if decision == "approve":
                    services.deletion_request_approve(
                        actor=actor,
                        request=target,
                        comment=comment,
                        confirm_primary_drop=form.cleaned_data["confirm_primary_drop"],
                    )
                else:
                    services.deletion_request_reject(actor=actor, request=target, comment=comment)
            except ApplicationError as error:
                status = form_refusal(form, error)
                blocked_by_hold = isinstance(error, LegalHoldActive)
                target = selectors.deletion_request_get(actor=actor, public_id=request_id)
            else:
                return redirect("deletion-request-page", request_id=target.public_id)
        else:
            if decision not in ("approve", "reject"):
                form.add_error(None, "Choose Approve or Reject.")
            status = 400
    datasets = request_datasets(target)
    context = {
        "req": target,
        "rows": _plan_rows(target.plan),
        "items": target.items.select_related("location").order_by("pk"),
        "form": form,
        "why_not": _why_not_decide(actor, target),
        "can_decide": target.state == DeletionState.DRAFTED and not _why_not_decide(actor, target),
        "holds": selectors.legal_hold_active_list(
            actor=actor, client=target.client, datasets=datasets
        ),
        "blocked_by_hold": blocked_by_hold,
        "refresh": target.state in (DeletionState.APPROVED, DeletionState.EXECUTING),
    }
    return render(request, "lifecycle/deletion_detail.html", context, status=status)


@tenant_page
@require_POST
def engagement_end_page(request: TenantHttpRequest, engagement_id: UUID) -> HttpResponse:
    """The client page's "End engagement" button, with the day it ended (empty: today)."""
    actor = request.actor
    engagement = get_visible_or_404(engagement_list(actor=actor), engagement_id)
    form = EngagementEndForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the day the engagement ended as a date.")
        return redirect("client-detail", engagement.client.public_id)
    try:
        services.engagement_end(
            actor=actor, engagement=engagement, ends_on=form.cleaned_data["ended_on"]
        )
    except ApplicationError as error:
        if error.status == 403:
            raise
        messages.error(
            request,
            " ".join([error.message, *(m for ms in error.fields.values() for m in ms)]),
        )
    else:
        messages.success(request, f"Engagement {engagement.name} ended.")
    return redirect("client-detail", engagement.client.public_id)
