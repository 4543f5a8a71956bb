"""The home page (client health across the apps) and its "Acknowledge" button."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from backups.services.alerts import alert_acknowledge, alert_list
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import get_visible_or_404
from lifecycle import dashboard as health


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
