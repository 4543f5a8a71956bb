"""Inventory pages: clients (new, edit, detail), engagements (new), dataset registration."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from clients import selectors, services
from clients.forms import DatasetRegisterForm
from clients.pages.forms import ClientForm, EngagementForm
from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
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
        "can_edit": actor.is_admin,
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


def _form_page(
    request: TenantHttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    return render(request, template, context, status=status)


@tenant_page
def client_new(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    actor.require_admin("create clients")
    form = ClientForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                client = services.client_create(actor=actor, **form.cleaned_data)
            except (ValidationError, ApplicationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, f"Client “{client.name}” created.")
                return redirect("client-detail", client_id=client.public_id)
    return _form_page(
        request, "clients/settings/client_form.html", {"form": form, "client": None}, status=status
    )


@tenant_page
def client_edit(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    actor = request.actor
    client = selectors.client_get(actor=actor, public_id=client_id)
    actor.require_admin("edit clients")
    initial = {name: getattr(client, name) for name in ClientForm.base_fields}
    form = ClientForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.client_update(actor=actor, client=client, **form.cleaned_data)
            except (ValidationError, ApplicationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, f"Client “{client.name}” saved.")
                return redirect("client-detail", client_id=client.public_id)
    return _form_page(
        request,
        "clients/settings/client_form.html",
        {"form": form, "client": client},
        status=status,
    )


@tenant_page
def engagement_new(request: TenantHttpRequest, client_id: UUID) -> HttpResponse:
    actor = request.actor
    client = selectors.client_get(actor=actor, public_id=client_id)
    actor.require_admin("create engagements")
    form = EngagementForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                engagement = services.engagement_create(
                    actor=actor, client=client, **form.cleaned_data
                )
            except (ValidationError, ApplicationError) as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, f"Engagement “{engagement.name}” created.")
                return redirect("client-detail", client_id=client.public_id)
    return _form_page(
        request,
        "clients/settings/engagement_form.html",
        {"form": form, "client": client},
        status=status,
    )
