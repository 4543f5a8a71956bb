"""The access log of a client and of a dataset, paginated."""

from __future__ import annotations

from uuid import UUID

from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import reverse

from clients.selectors import client_get, dataset_get
from kernel.pages import TenantHttpRequest, tenant_page
from lifecycle import selectors

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
