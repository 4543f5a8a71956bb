"""The settings hub, and each person's own account (time zone; password change is Django's)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from clients import services
from clients.middleware import SESSION_TIME_ZONE
from clients.pages.forms import AccountForm
from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
from kernel.pages import TenantHttpRequest, tenant_page


@tenant_page
def settings_index(request: TenantHttpRequest) -> HttpResponse:
    actor = request.actor
    context = {
        "is_admin": actor.is_admin,
        "sees_members": actor.sees_whole_organization,
    }
    return render(request, "clients/settings/index.html", context)


@tenant_page
def account(request: TenantHttpRequest) -> HttpResponse:
    user = request.user
    current = services.user_time_zone(user=user)
    form = AccountForm(request.POST or None, initial={"time_zone": current})
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                services.user_time_zone_set(user=user, time_zone=form.cleaned_data["time_zone"])
                request.session[SESSION_TIME_ZONE] = form.cleaned_data["time_zone"]
            except (ValidationError, ApplicationError) as error:
                form_refusal(form, error)
            else:
                messages.success(
                    request, f"Dates are now shown in {form.cleaned_data['time_zone']}."
                )
                return redirect("account")
    return render(
        request,
        "clients/settings/account.html",
        {"form": form, "current": current, "now": timezone.now()},
        status=status,
    )
