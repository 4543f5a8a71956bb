"""Dataset page with its backups: policy, targets, runs with live progress, snapshots, restore."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from agencyops.exceptions import Conflict, NotFound, ValidationFailed
from agencyops.http import request_origin
from agencyops.pages import tenant_page
from agencyops.tenancy import Actor
from backups import selectors, services
from backups.forms import PolicyForm, RestoreForm
from backups.models import ACTIVE_RUN_STATES, BackupSchedule, Trigger
from clients.models import Dataset
from clients.selectors import dataset_get


def _context(request: HttpRequest, actor: Actor, dataset: Dataset, **extra: Any) -> dict[str, Any]:
    protection = services.protection_ensure(dataset)
    policy = protection.policy
    runs = list(selectors.backup_run_list(actor=actor).filter(dataset=dataset)[:10])
    return {
        "dataset": dataset,
        "protection": protection,
        "policy": policy,
        "targets": list(policy.policy_targets.select_related("location")) if policy else [],
        "schedules": BackupSchedule.objects.filter(dataset=dataset).select_related("location"),
        "runs": runs,
        "active_runs": [r for r in runs if r.status in ACTIVE_RUN_STATES],
        "snapshots": selectors.snapshot_list(actor=actor).filter(dataset=dataset)[:20],
        "restores": selectors.restore_list(actor=actor).filter(dataset=dataset)[:5],
        "can_manage": actor.may("manage", client_id=dataset.client_id, dataset_id=dataset.pk),
        "can_restore": actor.may("restore", client_id=dataset.client_id, dataset_id=dataset.pk),
        "restore_form": extra.pop("restore_form", None)
        or RestoreForm(actor=actor, dataset=dataset),
        "policy_form": extra.pop("policy_form", None)
        or PolicyForm(
            actor=actor,
            initial={
                "policy": policy.public_id if policy and protection.policy_pinned else None,
                "live_pipeline_input": protection.live_pipeline_input,
            },
        ),
        **extra,
    }


@tenant_page
def dataset_detail(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    return render(request, "backups/dataset_detail.html", _context(request, actor, dataset))


@require_POST
@tenant_page
def dataset_backup(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    try:
        services.backup_run_request(actor=actor, dataset=dataset, trigger=Trigger.MANUAL)
    except (Conflict, ValidationFailed) as error:
        # State problems are shown on the page; a missing right stays a 403 (tenant_page).
        messages.error(request, error.message)
    else:
        messages.success(request, "Backup started.")
    return redirect("dataset-detail", dataset_id=dataset.public_id)


@require_POST
@tenant_page
def dataset_restore(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    form = RestoreForm(request.POST, actor=actor, dataset=dataset)
    if form.is_valid():
        as_of = form.cleaned_data["as_of"] or timezone.now()
        snapshot = services.snapshot_as_of(dataset, as_of)
        if snapshot is None:
            form.add_error("as_of", "No snapshot was taken at or before that time.")
        else:
            try:
                services.restore_request(
                    actor=actor,
                    snapshot=snapshot,
                    destination_location=form.cleaned_data["destination_location"],
                    destination_path=form.cleaned_data["destination_path"],
                    path_prefix=form.cleaned_data["path_prefix"],
                    origin=request_origin(request),
                )
            except (Conflict, ValidationFailed, ValidationError) as error:
                form.add_error(None, getattr(error, "message", str(error)))
            else:
                messages.success(
                    request,
                    f"Restoring the snapshot of {snapshot.taken_at:%Y-%m-%d %H:%M} UTC "
                    f"from {snapshot.location.name}.",
                )
                return redirect("dataset-detail", dataset_id=dataset.public_id)
    context = _context(request, actor, dataset, restore_form=form)
    return render(request, "backups/dataset_detail.html", context, status=400)


@require_POST
@tenant_page
def dataset_policy(request: HttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor  # type: ignore[attr-defined]
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    form = PolicyForm(request.POST, actor=actor)
    if form.is_valid():
        services.dataset_policy_set(
            actor=actor,
            dataset=dataset,
            policy=form.cleaned_data["policy"],
            live_pipeline_input=form.cleaned_data["live_pipeline_input"],
        )
        messages.success(request, "Backup policy saved.")
        return redirect("dataset-detail", dataset_id=dataset.public_id)
    context = _context(request, actor, dataset, policy_form=form)
    return render(request, "backups/dataset_detail.html", context, status=400)


@tenant_page
def run_progress(request: HttpRequest, run_id: UUID) -> HttpResponse:
    """Polled by the progress bar (session auth, same scoping as the page)."""
    actor = request.actor  # type: ignore[attr-defined]
    run = selectors.backup_run_list(actor=actor).filter(Q(public_id=run_id)).first()
    if run is None:
        raise NotFound()
    return JsonResponse(
        {
            "status": run.status,
            "status_display": run.get_status_display(),
            "bytes_done": run.bytes_done,
            "bytes_total": run.bytes_total,
            "percent": run.progress_percent,
            "error": run.error,
        }
    )
