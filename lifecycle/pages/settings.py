"""What an owner or admin keeps in the lifecycle app: retention obligations, procurement
tokens (the secret shown once), the record of processing per client, and how many admins
approve a deletion."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from clients.selectors import client_get, client_list, dataset_get, dataset_list, engagement_list
from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
from kernel.http import request_origin
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404
from lifecycle import selectors, services
from lifecycle.pages.common import choices_of
from lifecycle.pages.forms import (
    DeletionSettingsForm,
    ObligationForm,
    ProcessingRecordForm,
    TokenForm,
)

# --- obligations ---


@tenant_page
def obligation_list(request: TenantHttpRequest) -> HttpResponse:
    """Every obligation over the clients the actor sees, with its due date and state; a
    fulfilled one links to the certificate that proves it."""
    actor = request.actor
    obligations = list(selectors.obligation_list(actor=actor))
    fulfilled = selectors.obligation_fulfilments(actor=actor, obligations=obligations)
    rows = [{"o": o, "fulfilled_by": fulfilled.get(o.pk)} for o in obligations]
    return render(request, "lifecycle/obligation_list.html", {"rows": rows})


@tenant_page
def obligation_new(request: TenantHttpRequest) -> HttpResponse:
    """Record what a contract, DPA or regulation requires (owners and admins)."""
    actor = request.actor
    actor.require_admin("record retention obligations")
    clients = client_list(actor=actor)
    engagements = engagement_list(actor=actor).order_by("client__name", "name")
    datasets = dataset_list(actor=actor).order_by("client__name", "name")
    form = ObligationForm(
        request.POST or None,
        initial={"client": request.GET.get("client", "")},
        clients=choices_of(clients, lambda c: c.name),
        engagements=choices_of(engagements, lambda e: f"{e.client.name} / {e.name}"),
        datasets=choices_of(datasets, lambda d: f"{d.client.name} / {d.name}"),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            try:
                client = client_get(actor=actor, public_id=data["client"])
                obligation = services.obligation_create(
                    actor=actor,
                    client=client,
                    engagement=get_visible_or_404(engagement_list(actor=actor), data["engagement"])
                    if data["engagement"]
                    else None,
                    dataset=dataset_get(actor=actor, public_id=data["dataset"])
                    if data["dataset"]
                    else None,
                    kind=data["kind"],
                    source=data["source"],
                    days_after_end=data["days_after_end"],
                    retain_until=data["retain_until"],
                    retain_years=data["retain_years"],
                    source_reference=data["source_reference"],
                )
            # a model's clean() refuses through full_clean() as a ValidationError
            except (ApplicationError, ValidationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, f"Obligation recorded: {obligation}.")
                return redirect("obligation-list")
    context = {
        "form": form,
        "heading": "Record an obligation",
        "back_url": "obligation-list",
        "back_label": "Obligations",
        "submit_label": "Record obligation",
        "form_id": "obligation-form",
    }
    return render(request, "lifecycle/obligation_new.html", context, status=status)


# --- procurement tokens ---


@tenant_page
def token_list(request: TenantHttpRequest) -> HttpResponse:
    """Every procurement token (owners, admins, auditors): never the secret."""
    tokens = selectors.procurement_token_list(actor=request.actor)
    return render(request, "lifecycle/token_list.html", {"tokens": tokens})


@tenant_page
def token_new(request: TenantHttpRequest) -> HttpResponse:
    """Issue a token for one client: the secret is on the answer to this POST, once (no
    redirect carries it, the page is not cached); only its hash is kept."""
    actor = request.actor
    actor.require_admin("issue procurement tokens")
    form = TokenForm(
        request.POST or None,
        initial={"client": request.GET.get("client", "")},
        clients=choices_of(client_list(actor=actor), lambda c: c.name),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                client = client_get(actor=actor, public_id=form.cleaned_data["client"])
                token, raw = services.evidence_token_issue(
                    actor=actor,
                    client=client,
                    name=form.cleaned_data["name"],
                    expires_at=form.cleaned_data["expires_at"],
                    origin=request_origin(request),
                )
            except ApplicationError as error:
                status = form_refusal(form, error)
            else:
                response = render(
                    request, "lifecycle/token_issued.html", {"token": token, "secret": raw}
                )
                response["Cache-Control"] = "no-store"
                return response
    context = {
        "form": form,
        "heading": "New procurement token",
        "back_url": "token-list",
        "back_label": "Procurement tokens",
        "submit_label": "Issue token",
        "form_id": "token-form",
    }
    return render(request, "lifecycle/token_new.html", context, status=status)


@tenant_page
@require_POST
def token_revoke(request: TenantHttpRequest, token_id: UUID) -> HttpResponse:
    actor = request.actor
    token = selectors.procurement_token_get(actor=actor, public_id=token_id)
    try:
        services.evidence_token_revoke(actor=actor, token=token, origin=request_origin(request))
    except ApplicationError as error:
        if error.status == 403:
            raise
        messages.error(request, error.message)
    else:
        messages.success(request, f"Token {token.name} revoked.")
    return redirect("token-list")


# --- the record of processing ---


def _record_initial(record: Any) -> dict[str, Any]:
    return {
        "processor_contact": record.processor_contact,
        "processor_representative": record.processor_representative,
        "processor_dpo": record.processor_dpo,
        "controller_contact": record.controller_contact,
        "controller_representative": record.controller_representative,
        "controller_dpo": record.controller_dpo,
        "processing_categories": "\n".join(record.processing_categories or []),
        "transfers": "\n".join(
            " | ".join(t.get(k, "") for k in ("country", "recipient", "safeguard", "documentation"))
            for t in record.transfers or []
        ),
        "security_measures": record.security_measures,
    }


@tenant_page
def processing_record(request: TenantHttpRequest) -> HttpResponse:
    """`?client=<id>`: the client's record of processing (GDPR Art. 30(2)), published in its
    evidence; owners and admins edit it. Without a client: the clients to choose from."""
    actor = request.actor
    actor.require_admin("edit the record of processing")
    if not request.GET.get("client"):
        return render(
            request, "lifecycle/processing_record.html", {"clients": list(client_list(actor=actor))}
        )
    client = client_get(actor=actor, public_id=request.GET["client"])
    record = services.processing_record_get(client)
    form = ProcessingRecordForm(request.POST or None, initial=_record_initial(record))
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = {k: v for k, v in form.cleaned_data.items() if k in form.fields}
            data["processing_categories"] = form.categories()
            data["transfers"] = form.transfer_rows()
            try:
                services.processing_record_update(actor=actor, client=client, **data)
            except ApplicationError as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, f"Record of processing of {client.name} saved.")
                return redirect(f"{request.path}?client={client.public_id}")
    context = {"client": client, "record": record, "form": form}
    return render(request, "lifecycle/processing_record.html", context, status=status)


# --- approvals required ---


@tenant_page
def deletion_settings(request: TenantHttpRequest) -> HttpResponse:
    """How many admins approve a deletion (owners and admins change it)."""
    actor = request.actor
    actor.require_admin("change the deletion settings")
    current = services.deletion_settings_get(actor=actor)
    form = DeletionSettingsForm(
        request.POST or None, initial={"approvals_required": current.approvals_required}
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.deletion_settings_update(
                    actor=actor, approvals_required=form.cleaned_data["approvals_required"]
                )
            except ApplicationError as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, "Deletion approvals saved.")
                return redirect("deletion-settings")
    context = {
        "form": form,
        "current": current,
        "heading": "Deletion approvals",
        "back_url": "deletion-queue",
        "back_label": "Deletions",
        "submit_label": "Save",
        "form_id": "deletion-settings-form",
        "confirm": "Change how many admins approve a deletion?",
    }
    return render(request, "lifecycle/deletion_settings.html", context, status=status)
