"""Legal holds in pages: the list (active and released), placing one, releasing one."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from clients.selectors import client_get, client_list, dataset_get, dataset_list
from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
from kernel.pages import TenantHttpRequest, tenant_page
from lifecycle import selectors, services
from lifecycle.pages.common import choices_of
from lifecycle.pages.forms import LegalHoldForm, LegalHoldReleaseForm


@tenant_page
def hold_list(request: TenantHttpRequest) -> HttpResponse:
    """Every hold over the clients the actor sees: active first, then released."""
    holds = list(selectors.legal_hold_list(actor=request.actor))
    context = {
        "active": [h for h in holds if h.is_active],
        "released": [h for h in holds if not h.is_active],
        "release_form": LegalHoldReleaseForm(),
    }
    return render(request, "lifecycle/hold_list.html", context)


@tenant_page
def hold_new(request: TenantHttpRequest) -> HttpResponse:
    """`?client=&dataset=` preselect the scope. Owners and admins place holds."""
    actor = request.actor
    actor.require_admin("place legal holds")
    clients = client_list(actor=actor)
    datasets = (
        dataset_list(actor=actor)
        .exclude(lifecycle_state="deleted")
        .order_by("client__name", "name")
    )
    initial = {"client": request.GET.get("client", ""), "dataset": request.GET.get("dataset", "")}
    form = LegalHoldForm(
        request.POST or None,
        initial=initial,
        clients=choices_of(clients, lambda c: c.name),
        datasets=choices_of(datasets, lambda d: f"{d.client.name} / {d.name}"),
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                client = client_get(actor=actor, public_id=form.cleaned_data["client"])
                dataset = (
                    dataset_get(actor=actor, public_id=form.cleaned_data["dataset"])
                    if form.cleaned_data["dataset"]
                    else None
                )
                hold = services.legal_hold_place(
                    actor=actor, client=client, dataset=dataset, reason=form.cleaned_data["reason"]
                )
            except ApplicationError as error:
                status = form_refusal(form, error)
            else:
                messages.success(request, f"Legal hold placed on {hold.dataset or hold.client}.")
                return redirect("hold-list")
    context = {
        "form": form,
        "heading": "Place a legal hold",
        "back_url": "hold-list",
        "back_label": "Legal holds",
        "submit_label": "Place hold",
        "form_id": "hold-form",
    }
    return render(request, "lifecycle/hold_new.html", context, status=status)


@tenant_page
@require_POST
def hold_release(request: TenantHttpRequest, hold_id: UUID) -> HttpResponse:
    """Release a hold (owners and admins), with why."""
    actor = request.actor
    hold = selectors.legal_hold_get(actor=actor, public_id=hold_id)
    form = LegalHoldReleaseForm(request.POST)
    comment = form.cleaned_data["comment"] if form.is_valid() else ""
    try:
        services.legal_hold_release(actor=actor, hold=hold, comment=comment)
    except ApplicationError as error:
        if error.status == 403:
            raise
        messages.error(request, error.message)
    else:
        messages.success(request, f"Legal hold on {hold.dataset or hold.client} released.")
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(
        back, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(back)
    return redirect("hold-list")
