"""Lifecycle pages: access logs, the deletion approvals queue, request detail, certificate,
and the engagement end button. Thin views over selectors and services."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from backups.services.alerts import alert_acknowledge, alert_list
from clients.selectors import client_get, dataset_get, engagement_list
from kernel.http import request_origin
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404
from lifecycle import dashboard as health
from lifecycle import selectors, services
from lifecycle.models import DeletionState

PAGE_SIZE = 100


@tenant_page
def client_access_log(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    actor = request.actor
    client = client_get(actor=actor, public_id=client_id)
    events = selectors.access_event_list(actor=actor).filter(client=client)
    context = {
        "subject": client.name,
        "back_url": reverse("client-detail", args=[client.public_id]),
        "page": Paginator(events, PAGE_SIZE).get_page(request.GET.get("page")),
        "show_dataset": True,
    }
    return render(request, "lifecycle/access_log.html", context)


@tenant_page
def dataset_access_log(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    events = selectors.access_event_list(actor=actor).filter(dataset=dataset)
    context = {
        "subject": f"{dataset.client.name} / {dataset.name}",
        "back_url": reverse("dataset-detail", args=[dataset.public_id]),
        "page": Paginator(events, PAGE_SIZE).get_page(request.GET.get("page")),
        "show_dataset": False,
    }
    return render(request, "lifecycle/access_log.html", context)


# --- deletions: approvals queue, request detail with progress, printable certificate ---


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


@tenant_page
def deletion_request_detail(request: TenantHttpRequest, request_id: UUID) -> HttpResponse:
    """The plan, the decisions, progress while executing, the verification and certificate.
    POST `decision=approve|reject` with a comment decides (admins, never the requester)."""
    actor = request.actor
    target = selectors.deletion_request_get(actor=actor, public_id=request_id)
    if request.method == "POST":
        comment = request.POST.get("comment", "")[:1000]
        if request.POST.get("decision") == "approve":
            services.deletion_request_approve(actor=actor, request=target, comment=comment)
        elif request.POST.get("decision") == "reject":
            services.deletion_request_reject(actor=actor, request=target, comment=comment)
        return redirect("deletion-request-page", request_id=target.public_id)
    context = {
        "req": target,
        "items": target.items.select_related("location").order_by("pk"),
        "can_decide": actor.is_admin
        and target.state == DeletionState.DRAFTED
        and target.requested_by_id != actor.user_id,
        "refresh": target.state in (DeletionState.APPROVED, DeletionState.EXECUTING),
    }
    return render(request, "lifecycle/deletion_detail.html", context)


@tenant_page
def deletion_certificate_page(request: TenantHttpRequest, request_id: UUID) -> HttpResponse:
    """The certificate, printable, with its sha256 and signature."""
    actor = request.actor
    target = selectors.deletion_request_get(actor=actor, public_id=request_id)
    certificate = getattr(target, "certificate", None)
    if certificate is None:
        raise Http404
    context = {
        "req": target,
        "certificate": certificate,
        "doc": certificate.document,
        "raw": services.certificate_file_bytes(certificate).decode(),
    }
    return render(request, "lifecycle/deletion_certificate.html", context)


@tenant_page
@require_POST
def engagement_end_page(request: TenantHttpRequest, engagement_id: UUID) -> HttpResponse:
    """The client page's "End engagement" button."""
    actor = request.actor
    engagement = get_visible_or_404(engagement_list(actor=actor), engagement_id)
    services.engagement_end(actor=actor, engagement=engagement)
    return redirect("client-detail", engagement.client.public_id)


# --- health dashboard ---


@tenant_page
def dashboard(request: TenantHttpRequest) -> HttpResponse:
    """Per client green / amber / red with reasons, and what needs someone today."""
    actor = request.actor
    overview = health.dashboard_overview(actor=actor)
    context = {
        "o": overview,
        "health_rule": health.HEALTH_RULE,
        "success_chart": health.success_chart(overview),
        "storage_chart": health.storage_chart(overview),
    }
    return render(request, "lifecycle/dashboard.html", context)


@tenant_page
@require_POST
def alert_acknowledge_page(request: TenantHttpRequest, alert_id: UUID) -> HttpResponse:
    """The dashboard's "Acknowledge" button: someone is on it (the alert stays unresolved)."""
    actor = request.actor
    alert = get_visible_or_404(alert_list(actor=actor), alert_id)
    alert_acknowledge(actor=actor, alert=alert, note=request.POST.get("note", "")[:500])
    messages.success(request, f"Acknowledged: {alert.title}")
    # The alert centre sends `next` to come back to itself; only a path of this site is followed.
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("dashboard")


# --- procurement evidence ---


def _seconds(value: int | None) -> timedelta | None:
    return timedelta(seconds=value) if value is not None else None


@tenant_page
def client_evidence_page(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    """The client's evidence, printable; the same signed document as the API (one access
    event per view). Owners, admins, auditors and leads granted the client."""
    actor = request.actor
    client = selectors.evidence_client_get(actor=actor, public_id=client_id)
    signed = services.evidence_read(
        actor=actor, client=client, origin=request_origin(request), via="page"
    )
    doc = signed.document
    locations = {loc["id"]: loc for loc in doc["storage_locations"]}
    policies = {p["id"]: p["name"] for p in doc["backup_policies"]}
    # Every per-dataset section lists the datasets in the inventory's order: one row each.
    rows = [
        {
            "d": d,
            "p": p,
            "r": r,
            "k": k,
            "location": locations.get(d["primary_location"], {}).get("name", "?"),
            "policy": policies.get(p["policy"] or ""),
            "rpo": _seconds(d["rpo_seconds"]),
            "rto": _seconds(d["rto_seconds"]),
            "targets": [
                {**t, "name": locations.get(t["location"], {}).get("name", "?")}
                for t in p["targets"]
            ],
            "drill_time": _seconds(r["last_drill"]["measured_seconds"])
            if r["last_drill"]
            else None,
            "restore_time": _seconds(r["last_restore"]["duration_seconds"])
            if r["last_restore"]
            else None,
        }
        for d, p, r, k in zip(
            doc["inventory"],
            doc["protection"],
            doc["restore_tests"],
            doc["encryption"]["keys"],
            strict=True,
        )
    ]
    context = {
        "client": client,
        "doc": doc,
        "signature": signed.signature,
        "rows": rows,
        "api_url": f"/api/v1/clients/{client.public_id}/evidence/",
    }
    return render(request, "lifecycle/evidence.html", context)
