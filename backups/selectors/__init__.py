"""Tenant reads of the backup app, each starting from `visible_to(actor)`."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from django.db.models import (
    Case,
    IntegerField,
    OuterRef,
    Prefetch,
    QuerySet,
    Subquery,
    Value,
    When,
)

from backups.models import (
    SEVERITY_RANK,
    Alert,
    BackupPolicy,
    BackupRun,
    DatasetProtection,
    PolicyTarget,
    PostureAudit,
    PostureFinding,
    PostureFix,
    RestoreRun,
    Review,
    RunTarget,
    Snapshot,
)
from clients.models import Dataset, StorageLocation
from clients.selectors import dataset_list
from kernel.tenancy import Actor, get_visible_or_404


def policy_list(*, actor: Actor) -> QuerySet[BackupPolicy]:
    targets = PolicyTarget.objects.select_related("location").order_by("position", "id")
    return BackupPolicy.objects.visible_to(actor).prefetch_related(
        Prefetch("policy_targets", queryset=targets)
    )


def protection_of(dataset: Dataset) -> DatasetProtection | None:
    """The protection of a dataset the caller may see, read only: a page never writes (the row
    is made when the dataset is registered; a dataset without one shows no policy)."""
    return DatasetProtection.objects.select_related("policy").filter(dataset=dataset).first()


def dataset_list_with_protection(*, actor: Actor) -> QuerySet[Dataset]:
    return dataset_list(actor=actor).select_related("protection", "protection__policy")


def backup_run_list(*, actor: Actor) -> QuerySet[BackupRun]:
    targets = RunTarget.objects.select_related("location").order_by("position", "id")
    return (
        BackupRun.objects.visible_to(actor)
        .select_related("dataset", "requested_by")
        .prefetch_related(
            Prefetch("run_targets", queryset=targets),
            Prefetch(
                "snapshots",
                queryset=Snapshot.objects.select_related("location", "dataset", "run"),
            ),
        )
    )


def backup_run_get(*, actor: Actor, public_id: Any) -> BackupRun:
    return get_visible_or_404(backup_run_list(actor=actor), public_id)


def snapshot_list(*, actor: Actor, as_of: datetime | None = None) -> QuerySet[Snapshot]:
    """Complete snapshots, newest first; with `as_of`, only those taken at or before it."""
    qs = (
        Snapshot.objects.visible_to(actor)
        .filter(forgotten_at__isnull=True)
        .select_related("dataset", "location", "run")
    )
    if as_of is not None:
        qs = qs.filter(taken_at__lte=as_of)
    return qs


def snapshot_get(*, actor: Actor, public_id: Any) -> Snapshot:
    return get_visible_or_404(snapshot_list(actor=actor), public_id)


def snapshot_copies(*, actor: Actor, snapshot: Snapshot) -> QuerySet[Snapshot]:
    """The copies of one backup: the snapshot the same run stored on each of its targets (the
    snapshot alone when it has no run), by target name."""
    qs = snapshot_list(actor=actor).filter(dataset_id=snapshot.dataset_id)
    if snapshot.run_id is None:
        return qs.filter(pk=snapshot.pk)
    return qs.filter(run_id=snapshot.run_id).order_by("location__name", "id")


def restore_list(*, actor: Actor) -> QuerySet[RestoreRun]:
    return RestoreRun.objects.visible_to(actor).select_related(
        "dataset", "snapshot", "snapshot__location", "destination_location", "requested_by"
    )


def drill_list(*, actor: Actor) -> QuerySet[RestoreRun]:
    """Drills the actor may see (client grants apply), newest first, with what the API shows."""
    return (
        RestoreRun.objects.visible_to(actor)
        .filter(is_drill=True)
        .select_related("dataset", "snapshot", "snapshot__location", "requested_by", "reviewed_by")
    )


# --- alerts and reviews ---


def alert_list(*, actor: Actor) -> Any:
    """Alerts the actor may see (AlertQuerySet.visible_to), with what their rows show. A grant
    on one dataset shows that dataset's alerts, not those of the rest of its client."""
    return Alert.objects.visible_to(actor).select_related(
        "client", "dataset", "location", "policy", "acknowledged_by"
    )


def review_list(*, actor: Actor) -> Any:
    """Reviews of policies (organization-wide, like the policies) and of the clients the actor
    sees."""
    return Review.objects.visible_to(actor).select_related("client", "policy", "reviewed_by")


# --- posture audits and fixes ---

# LocationScopedQuerySet is declared over Model (it serves three models); these name the rows.


def _audits(qs: Any) -> QuerySet[PostureAudit]:
    return cast("QuerySet[PostureAudit]", qs)


def _findings(qs: Any) -> QuerySet[PostureFinding]:
    return cast("QuerySet[PostureFinding]", qs)


def _fixes(qs: Any) -> QuerySet[PostureFix]:
    return cast("QuerySet[PostureFix]", qs)


def latest_audits(location_ids: Iterable[int]) -> dict[int, PostureAudit]:
    """The newest audit of each location, findings prefetched (worst first): two queries.
    Callers pass ids of locations the actor may see."""
    ids = list(location_ids)
    if not ids:
        return {}
    # One subquery per location (not per audit row), along the (organization, location,
    # -audited_at) index.
    newest = (
        PostureAudit.objects.filter(
            organization_id=OuterRef("organization_id"), location_id=OuterRef("pk")
        )
        .order_by("-audited_at", "-id")
        .values("id")[:1]
    )
    latest_ids = (
        StorageLocation.objects.filter(pk__in=ids)
        .annotate(latest=Subquery(newest))
        .values("latest")
    )
    audits = (
        _audits(PostureAudit.objects.filter(id__in=latest_ids))
        .select_related("location")
        .prefetch_related(Prefetch("findings", queryset=_findings_worst_first()))
    )
    return {audit.location_id: audit for audit in audits}


def _findings_worst_first() -> QuerySet[PostureFinding]:
    rank = Case(
        *(When(severity=s.value, then=Value(r)) for s, r in SEVERITY_RANK.items()),
        output_field=IntegerField(),
    )
    return _findings(PostureFinding.objects.order_by(rank, "check_name"))


def posture_audit_list(*, actor: Actor) -> QuerySet[PostureAudit]:
    """Audits of the locations the actor sees, newest first, findings worst first."""
    return (
        _audits(PostureAudit.objects.visible_to(actor))
        .select_related("location", "requested_by")
        .prefetch_related(Prefetch("findings", queryset=_findings_worst_first()))
        .order_by("-audited_at", "-id")
    )


def posture_audit_get(*, actor: Actor, public_id: Any) -> PostureAudit:
    return get_visible_or_404(posture_audit_list(actor=actor), public_id)


def posture_fix_list(*, actor: Actor) -> QuerySet[PostureFix]:
    """Fixes applied to the locations the actor sees, newest first."""
    return (
        _fixes(PostureFix.objects.visible_to(actor))
        .select_related("location", "requested_by")
        .order_by("-created_at", "-id")
    )
