"""Inventory pages: thin views over selectors and services."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from clients import selectors, services
from clients.forms import DatasetRegisterForm
from kernel.exceptions import ApplicationError
from kernel.pages import TenantHttpRequest, tenant_page


@tenant_page
def client_detail(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    actor = request.actor
    client = selectors.client_get(actor=actor, public_id=client_id)
    context = {
        "client": client,
        "engagements": selectors.engagement_list(actor=actor).filter(client=client),
        "datasets": selectors.dataset_list(actor=actor).filter(client=client),
        "can_register": actor.may("manage", client_id=client.pk),
    }
    return render(request, "clients/client_detail.html", context)


@tenant_page
def dataset_register_page(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    actor = request.actor
    client = selectors.client_get(actor=actor, public_id=client_id)
    actor.require_level("manage", client_id=client.pk, action="register datasets")
    form = DatasetRegisterForm(request.POST or None, actor=actor, client=client)
    if request.method == "POST" and form.is_valid():
        try:
            dataset = services.dataset_register(actor=actor, client=client, **form.cleaned_data)
        except (ValidationError, ApplicationError) as error:
            form.apply_errors(error)
        else:
            messages.success(request, f"Dataset “{dataset.name}” registered.")
            return redirect("dataset-detail", dataset_id=dataset.public_id)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "clients/dataset_register.html", {"client": client, "form": form}, status=status
    )
