"""Storage location settings: the list, new and edit. Credentials are write-only: entered per
kind, sealed by the service, shown back only as "set" / "not set"."""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render

from clients import selectors, services
from clients.models import StorageLocation
from clients.pages.forms import LocationForm
from clients.services import UNCHANGED
from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404

RETYPE = "Credentials are never shown back: enter them again."


@tenant_page
def location_list(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    context = {
        "locations": selectors.location_list(actor=actor).order_by("name", "id"),
        "can_manage": actor.is_admin,
    }
    return render(request, "clients/settings/location_list.html", context)


def _refused(form: LocationForm, error: ValidationError | ApplicationError) -> int:
    status = form_refusal(form, error)
    if form.credentials_given():
        form.add_error(None, RETYPE)
    return status


def _render_form(
    request: TenantHttpRequest, form: LocationForm, location: StorageLocation | None, status: int
) -> HttpResponse:
    return render(
        request,
        "clients/settings/location_form.html",
        {"form": form, "location": location},
        status=status,
    )


@tenant_page
def location_new(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    actor.require_admin("manage storage locations")
    form = LocationForm(request.POST or None, actor=actor)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                location = services.location_create(
                    actor=actor, **form.location_fields(), credentials=form.credentials() or None
                )
            except (ValidationError, ApplicationError) as error:
                status = _refused(form, error)
            else:
                messages.success(request, f"Location “{location.name}” saved.")
                return redirect("location-list")
        elif form.credentials_given():
            form.add_error(None, RETYPE)
    return _render_form(request, form, None, status)


@tenant_page
def location_edit(request: TenantHttpRequest, location_id: UUID) -> HttpResponse:
    actor = request.actor
    location = get_visible_or_404(selectors.location_list(actor=actor), location_id)
    actor.require_admin("manage storage locations")
    initial: dict[str, Any] = {
        name: getattr(location, name)
        for name in ("name", "kind", "provider", "endpoint_url", "region", "bucket", "prefix")
    }
    initial["client"] = location.client.public_id if location.client else None
    form = LocationForm(request.POST or None, actor=actor, editing=True, initial=initial)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            credentials: dict[str, str] | Any | None = UNCHANGED
            if form.cleaned_data["remove_credentials"]:
                credentials = None
            elif form.credentials():
                credentials = form.credentials()
            try:
                services.location_update(
                    actor=actor,
                    # A copy: a refused change must not rename the page's heading.
                    location=copy.copy(location),
                    **form.location_fields(),
                    credentials=credentials,
                )
            except (ValidationError, ApplicationError) as error:
                status = _refused(form, error)
            else:
                messages.success(request, f"Location “{location.name}” saved.")
                return redirect("location-list")
        elif form.credentials_given():
            form.add_error(None, RETYPE)
    return _render_form(request, form, location, status)
