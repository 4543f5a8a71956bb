"""Dataset page with its backups: policy, targets, runs with live progress, snapshots, restore."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from backups import selectors, services
from backups.forms import PolicyForm, RestoreForm
from backups.models import (
    ACTIVE_RUN_STATES,
    AuditTrigger,
    BackupSchedule,
    FixAction,
    Snapshot,
    Trigger,
)
from backups.selectors.drills import drill_status
from backups.services import posture as posture_service
from backups.services.drills import drill_start
from backups.services.stores import repository_base
from clients.models import (
    Dataset,
    LifecycleState,
    LocationKind,
    Membership,
    Role,
    StorageLocation,
)
from clients.selectors import dataset_get, location_list
from clients.services import client_space
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.http import request_origin
from kernel.pages import TenantHttpRequest, tenant_page
from kernel.tenancy import Actor, get_visible_or_404
from kernel.uploads import upload_limit


def _context(request: HttpRequest, actor: Actor, dataset: Dataset, **extra: Any) -> dict[str, Any]:
    protection = selectors.protection_of(dataset)
    policy = protection.policy if protection is not None else None
    runs = list(selectors.backup_run_list(actor=actor).filter(dataset=dataset)[:10])
    live = dataset.lifecycle_state not in (LifecycleState.DELETED, LifecycleState.DELETION_PENDING)
    return {
        "dataset": dataset,
        "protection": protection,
        "policy": policy,
        "targets": list(policy.policy_targets.select_related("location")) if policy else [],
        "schedules": BackupSchedule.objects.filter(dataset=dataset).select_related("location"),
        "runs": runs,
        "active_runs": [r for r in runs if r.status in ACTIVE_RUN_STATES],
        "snapshots": selectors.snapshot_list(actor=actor).filter(dataset=dataset)[:20],
        "restores": selectors.restore_list(actor=actor).filter(dataset=dataset, is_drill=False)[:5],
        "drills": selectors.drill_list(actor=actor).filter(dataset=dataset)[:5],
        # A dataset being deleted or deleted (a tombstone) offers no action: the services
        # refuse them all (409).
        "can_manage": live
        and actor.may("manage", client_id=dataset.client_id, dataset_id=dataset.pk),
        "can_restore": live
        and actor.may("restore", client_id=dataset.client_id, dataset_id=dataset.pk),
        "can_drill": live and actor.is_admin,
        "restore_form": extra.pop("restore_form", None)
        or RestoreForm(actor=actor, dataset=dataset),
        "policy_form": extra.pop("policy_form", None)
        or PolicyForm(
            actor=actor,
            initial={
                "policy": (
                    policy.public_id if policy and protection and protection.policy_pinned else None
                ),
                "live_pipeline_input": bool(protection and protection.live_pipeline_input),
            },
        ),
        **extra,
    }


@tenant_page
def dataset_detail(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    return render(request, "backups/dataset_detail.html", _context(request, actor, dataset))


@require_POST
@tenant_page
def dataset_backup(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor
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
def dataset_policy(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor
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
def run_progress(request: TenantHttpRequest, run_id: UUID) -> HttpResponse:
    """Polled by the progress bar (session auth, same scoping as the page)."""
    actor = request.actor
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


@require_POST
@tenant_page
def dataset_export_upload(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    """A SaaS dataset's export, uploaded by a lead (streamed, size-limited; see
    backups.services.exports); the backup it starts stores it as a snapshot."""
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    services.saas_export_allowed(actor=actor, dataset=dataset)  # 403 before the body is read
    guard = upload_limit(request, services.export_limit())
    try:
        upload = request.FILES.get("file") if guard is not None else None
        if guard is None or guard.exceeded:
            raise services.export_too_large(guard.seen if guard else 0)
        if upload is None:
            raise ValidationFailed("Choose the export file.", fields={"file": "Required."})
        services.saas_export_receive(actor=actor, dataset=dataset, upload=upload)
    except (Conflict, ValidationFailed) as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Export received; a backup is storing it as a snapshot.")
    return redirect("dataset-detail", dataset_id=dataset.public_id)


# --- restore drills: start one by hand, and the dataset's recovery runbook ---


@require_POST
@tenant_page
def dataset_drill(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    try:
        drill = drill_start(actor=actor, dataset=dataset, origin=request_origin(request))
    except (Conflict, ValidationFailed) as error:
        # State problems are shown on the page; a missing right stays a 403 (tenant_page).
        messages.error(request, error.message)
    else:
        messages.success(
            request,
            f"Restore drill started on the snapshot of {drill.snapshot.taken_at:%Y-%m-%d %H:%M} "
            "UTC; a worker restores it into scratch and checks every file.",
        )
    return redirect("dataset-detail", dataset_id=dataset.public_id)


def _repository_uri(location: StorageLocation, dataset: Dataset) -> str:
    """Where the dataset's repository (key, chunks, snapshots) sits on a target."""
    base = repository_base(location, dataset)
    if location.kind == LocationKind.LOCAL:
        return f"file://{location.prefix.rstrip('/')}/{base}"
    return f"s3://{location.bucket}/{base}"


def _runbook_copies(actor: Actor, dataset: Dataset, policy: Any) -> list[dict[str, Any]]:
    """Every backup copy: the policy's targets in order, then any other location still holding
    restorable snapshots (a target the policy dropped keeps its history)."""
    locations: dict[int, StorageLocation] = {}
    if policy is not None:
        for target in policy.policy_targets.select_related("location"):
            locations[target.location_id] = target.location
    in_policy = set(locations)
    snapshots: dict[int, list[Snapshot]] = {}
    for snapshot in selectors.snapshot_list(actor=actor).filter(dataset=dataset):
        snapshots.setdefault(snapshot.location_id, []).append(snapshot)
        locations.setdefault(snapshot.location_id, snapshot.location)
    copies = []
    for location_id, location in locations.items():
        held = snapshots.get(location_id, [])  # newest first
        repository = _repository_uri(location, dataset)
        copies.append(
            {
                "location": location,
                "in_policy": location_id in in_policy,
                "repository": repository,
                "key": f"{repository}/key",
                "latest": held[0] if held else None,
                "restorable": len(held),
            }
        )
    return copies


def _curl(method: str, url: str, body: dict[str, str] | None = None) -> str:
    parts = ["curl"]
    if method != "GET":
        parts.append(f"-X {method}")
    parts.append('-H "Authorization: Bearer $AGENCYOPS_TOKEN"')
    if body is not None:
        parts.append('-H "Content-Type: application/json"')
        parts.append(f"-d '{json.dumps(body)}'")
    parts.append(f"'{url}'")
    return " ".join(parts)


def _runbook_commands(
    request: HttpRequest, dataset: Dataset, copies: list[dict[str, Any]]
) -> dict[str, Any]:
    """The exact commands and API calls, with this dataset's real ids filled in."""
    latest: Snapshot | None = max(
        (c["latest"] for c in copies if c["latest"] is not None),
        key=lambda s: s.taken_at,
        default=None,
    )
    snapshot_id = str(latest.public_id) if latest is not None else "<snapshot id>"
    directory = f"/srv/recovery/{slugify(dataset.name) or dataset.public_id}"
    api = request.build_absolute_uri
    leaf = f"restores/{slugify(dataset.name) or dataset.public_id}-recovery"
    space = client_space(dataset.location, dataset.client)
    restore_path = f"{space}/{leaf}" if space else leaf
    per_copy = [
        {
            "location": c["location"],
            "restore": f"python manage.py restore_snapshot {c['latest'].public_id} "
            f"--to {directory}",
            "verify": f"python manage.py verify_snapshot {c['latest'].public_id} "
            "--read-data-subset 100%",
        }
        for c in copies
        if c["latest"] is not None
    ]
    as_of = timezone.now().replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return {
        "latest": latest,
        "per_copy": per_copy,
        "list_snapshots": _curl(
            "GET",
            api(reverse("snapshot-list")) + f"?dataset={dataset.public_id}&as_of={as_of}",
        ),
        "restore": _curl(
            "POST",
            api(reverse("snapshot-restore", kwargs={"id": snapshot_id})),
            {
                "destination_location": str(dataset.location.public_id),
                "destination_path": restore_path,
            },
        ),
        "follow": _curl("GET", api(reverse("restore-list")) + "<restore id from the answer>/"),
        "drill": _curl("POST", api(reverse("drill-list")), {"dataset": str(dataset.public_id)}),
    }


@tenant_page
def dataset_runbook(request: TenantHttpRequest, dataset_id: UUID) -> HttpResponse:
    """The recovery runbook, printable, generated from live data: who to call, where every copy
    and the key are, and the exact restore commands. Same access as the dataset page."""
    actor = request.actor
    dataset = dataset_get(actor=actor, public_id=dataset_id)
    protection = selectors.protection_of(dataset)
    policy = protection.policy if protection is not None else None
    copies = _runbook_copies(actor, dataset, policy)
    admins = (
        Membership.objects.filter(
            organization_id=dataset.organization_id, role__in=[Role.OWNER, Role.ADMIN]
        )
        .select_related("user")
        .order_by("role", "user__username")
    )
    context = {
        "dataset": dataset,
        "protection": protection,
        "policy": policy,
        "copies": copies,
        "admins": admins,
        "commands": _runbook_commands(request, dataset, copies),
        "drill": drill_status(dataset),
        "generated_at": timezone.now(),
    }
    return render(request, "backups/dataset_runbook.html", context)


# --- posture audits ---


@tenant_page
def location_posture(request: TenantHttpRequest, location_id: UUID) -> HttpResponse:
    """A location's latest posture findings, worst first; admins get "Fix" and "Audit now"."""
    actor = request.actor
    location = get_visible_or_404(location_list(actor=actor), location_id)
    audit = selectors.latest_audits([location.pk]).get(location.pk)
    # latest_audits prefetches the findings worst first.
    findings = list(audit.findings.all()) if audit is not None else []
    context = {
        "location": location,
        "audit": audit,
        "findings": findings,
        "fixes": selectors.posture_fix_list(actor=actor).filter(location=location)[:10],
        # Every audit, newest first (the latest included): date, findings, result.
        "history": selectors.posture_audit_list(actor=actor).filter(location=location)[:50],
        "can_fix": actor.is_admin,
        "auditable": location.kind == LocationKind.S3,
        "default_log_prefix": posture_service.DEFAULT_LOG_PREFIX,
    }
    return render(request, "backups/location_posture.html", context)


@require_POST
@tenant_page
def location_posture_audit(request: TenantHttpRequest, location_id: UUID) -> HttpResponse:
    actor = request.actor
    location = get_visible_or_404(location_list(actor=actor), location_id)
    try:
        audit = posture_service.location_audit(location, trigger=AuditTrigger.MANUAL, actor=actor)
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        if audit.reachable:
            messages.success(request, "Audit done.")
        else:
            messages.error(request, "The bucket could not be reached; see the finding below.")
    return redirect("location-posture", location_id=location.public_id)


@require_POST
@tenant_page
def location_posture_fix(request: TenantHttpRequest, location_id: UUID) -> HttpResponse:
    actor = request.actor
    location = get_visible_or_404(location_list(actor=actor), location_id)
    action = request.POST.get("action", "")
    try:
        fix = posture_service.posture_fix_apply(
            actor=actor,
            location=location,
            action=action,
            log_prefix=request.POST.get("log_prefix") or None,
        )
    except ValidationFailed as error:
        messages.error(request, error.message)
    else:
        label = FixAction(action).label
        if fix.succeeded:
            messages.success(request, f"{label}: done, and the bucket was audited again.")
        else:
            messages.error(request, f"{label} failed: {fix.error}")
    return redirect("location-posture", location_id=location.public_id)
