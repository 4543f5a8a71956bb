""" "Test connection" on the storage locations page. Here, not in clients: reaching a location
takes the engine's store-opening path, which is the backups app's."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from backups.services.location_check import location_connection_test
from clients.selectors import location_list
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404


@require_POST
@tenant_page
def location_test(request: TenantHttpRequest, location_id: UUID) -> HttpResponse:
    actor = request.actor
    location = get_visible_or_404(location_list(actor=actor), location_id)
    check = location_connection_test(actor=actor, location=location)
    if check.ok:
        messages.success(request, f"{location.name}: OK. {check.message}")
    else:
        messages.error(request, f"{location.name}: the connection test failed. {check.message}")
    return redirect("location-list")
