"""Lifecycle pages: access logs, the deletion approvals queue, request detail, certificate,
and the engagement end button. Thin views over selectors and services."""

from __future__ import annotations

from uuid import UUID

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from agencyops.pages import tenant_page
from agencyops.tenancy import get_visible_or_404
from clients.selectors import client_get, dataset_get, engagement_list
from lifecycle import selectors, services
from lifecycle.models import DeletionState

PAGE_SIZE = 100


@tenant_page
def client_access_log(request: HttpRequest, client_id: UUID) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
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
def dataset_access_log(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
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
def deletion_queue(request: HttpRequest) -> HttpResponse:
    """Admins: requests awaiting approval with their plan and counts; everyone: the rest."""
    actor = request.actor  # type: ignore[attr-defined]
    requests = selectors.deletion_request_list(actor=actor)
    context = {
        "awaiting": [r for r in requests if r.state == DeletionState.DRAFTED],
        "others": [r for r in requests if r.state != DeletionState.DRAFTED][:100],
    }
    return render(request, "lifecycle/deletion_queue.html", context)


@tenant_page
def deletion_request_detail(request: HttpRequest, request_id: UUID) -> HttpResponse:
    """The plan, the decisions, progress while executing, the verification and certificate.
    POST `decision=approve|reject` with a comment decides (admins, never the requester)."""
    actor = request.actor  # type: ignore[attr-defined]
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
def deletion_certificate_page(request: HttpRequest, request_id: UUID) -> HttpResponse:
    """The certificate, printable, with its sha256 and signature."""
    actor = request.actor  # type: ignore[attr-defined]
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
def engagement_end_page(request: HttpRequest, engagement_id: UUID) -> HttpResponse:
    """The client page's "End engagement" button."""
    actor = request.actor  # type: ignore[attr-defined]
    engagement = get_visible_or_404(engagement_list(actor=actor), engagement_id)
    services.engagement_end(actor=actor, engagement=engagement)
    return redirect("client-detail", engagement.client.public_id)
