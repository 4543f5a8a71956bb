"""What the dashboard shows, read in one go for what an actor may see.

`dashboard_overview` starts from the actor's visible clients, datasets, alerts, runs, locations,
deletion requests and obligations (each through `visible_to`), and asks the backup app's
batch services for 3-2-1, drill status, posture and cost. It runs a fixed number of queries
however many clients there are (tests/lifecycle/test_dashboard.py pins it).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from backups.models import (
    SEVERITY_RANK,
    Alert,
    AlertKind,
    BackupRun,
    PostureFinding,
    RunStatus,
    Severity,
)
from backups.selectors import latest_audits
from backups.services.alerts import alert_may_acknowledge
from backups.services.assurance import ProtectionStatus, protection_status_many
from backups.services.cost import CostReport, cost_estimate
from backups.services.drills import DrillStatus, drill_status_many
from clients.models import Client, Dataset, LifecycleState, StorageLocation
from clients.selectors import client_list, location_list
from kernel.tenancy import Actor
from lifecycle.dashboard.health import AMBER, GREEN, HEALTH_ORDER, RED, ClientHealth, client_health
from lifecycle.models import DeletionRequest, DeletionState, ObligationKind, RetentionObligation

RETIRED_STATES = (LifecycleState.DELETED, LifecycleState.DELETION_PENDING)
ALERTS_SHOWN = 10
ROWS_SHOWN = 20
FINDINGS_SHOWN = 15
CHART_DAYS = 30
DELETIONS_DUE_WITHIN = timedelta(days=30)


@dataclass(frozen=True)
class AlertRow:
    alert: Alert
    may_acknowledge: bool


@dataclass(frozen=True)
class StaleDataset:
    dataset: Dataset
    last_good_at: datetime | None
    age: timedelta | None  # since the last good snapshot; None: never backed up


@dataclass(frozen=True)
class FindingRow:
    finding: PostureFinding
    location: StorageLocation
    audited_at: datetime
    posture_url: str


@dataclass(frozen=True)
class DayRuns:
    day: date
    succeeded: int
    failed: int


@dataclass(frozen=True)
class TierUsage:
    tier: str
    label: str
    bytes: int
    usd: Decimal


@dataclass(frozen=True)
class DashboardOverview:
    now: datetime
    whole_organization: bool
    clients: tuple[ClientHealth, ...]
    health_counts: dict[str, int]
    alerts: tuple[AlertRow, ...]  # the latest unresolved ones
    open_alert_count: int
    failed_runs_today: tuple[BackupRun, ...]
    failed_today_count: int
    stale_datasets: tuple[StaleDataset, ...]
    findings: tuple[FindingRow, ...]  # of the latest audit of each location, worst first
    pending_approvals: tuple[DeletionRequest, ...]
    deletions_due: tuple[RetentionObligation, ...]
    cost: CostReport
    storage_by_tier: tuple[TierUsage, ...]
    runs_by_day: tuple[DayRuns, ...]  # oldest first, CHART_DAYS days ending today

    @property
    def worst_status(self) -> str:
        for status in (RED, AMBER):
            if self.health_counts.get(status):
                return status
        return GREEN


def _posture_url(location: StorageLocation) -> str:
    return reverse("location-posture", args=[location.public_id])


def _runs_by_day(actor: Actor, now: datetime) -> tuple[DayRuns, ...]:
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    rows = (
        BackupRun.objects.visible_to(actor)
        .filter(
            status__in=(RunStatus.SUCCEEDED, RunStatus.FAILED),
            finished_at__gte=datetime.combine(first, time(0), tzinfo=UTC),
            finished_at__lte=now,
        )
        .annotate(day=TruncDate("finished_at", tzinfo=UTC))
        .values("day", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[date, str], int] = {(r["day"], r["status"]): r["n"] for r in rows}
    days = (first + timedelta(days=i) for i in range(CHART_DAYS))
    return tuple(
        DayRuns(
            day=day,
            succeeded=counts.get((day, RunStatus.SUCCEEDED), 0),
            failed=counts.get((day, RunStatus.FAILED), 0),
        )
        for day in days
    )


def _findings(actor: Actor) -> tuple[FindingRow, ...]:
    locations = {location.pk: location for location in location_list(actor=actor)}
    rows: list[FindingRow] = []
    for location_id, audit in latest_audits(list(locations)).items():
        location = locations[location_id]
        url = _posture_url(location)
        # The findings manager is typed for any location-scoped model; these are findings.
        findings = cast("list[PostureFinding]", list(audit.findings.all()))
        rows.extend(FindingRow(f, location, audit.audited_at, url) for f in findings)
    rows.sort(
        key=lambda row: (
            SEVERITY_RANK.get(Severity(row.finding.severity), len(SEVERITY_RANK)),
            row.location.name,
            row.finding.check_name,
        )
    )
    return tuple(rows[:FINDINGS_SHOWN])


@dataclass(frozen=True)
class _UnresolvedAlerts:
    latest: list[Alert]
    per_client: dict[int | None, int]
    failed_titles: dict[int, list[str]]  # open "backup failed" alerts, per client


def _unresolved_alerts(actor: Actor) -> _UnresolvedAlerts:
    unresolved = Alert.objects.visible_to(actor).unresolved()
    latest = list(
        unresolved.select_related("client", "dataset", "location", "acknowledged_by").order_by(
            "-opened_at", "-id"
        )[:ALERTS_SHOWN]
    )
    per_client: dict[int | None, int] = {
        row["client_id"]: row["n"]
        for row in unresolved.values("client_id").annotate(n=Count("id")).order_by()
    }
    failed_titles: dict[int, list[str]] = defaultdict(list)
    for client_id, title in unresolved.filter(kind=AlertKind.BACKUP_FAILED).values_list(
        "client_id", "title"
    ):
        if client_id is not None:
            failed_titles[client_id].append(title)
    return _UnresolvedAlerts(latest, per_client, failed_titles)


def _clients_health(
    clients: list[Client],
    datasets: list[Dataset],
    protections: dict[int, ProtectionStatus],
    drills: dict[int, DrillStatus],
    alerts: _UnresolvedAlerts,
    now: datetime,
    deletions: dict[int, DeletionRequest] | None = None,
) -> tuple[tuple[ClientHealth, ...], dict[str, int]]:
    """Every client's health, at risk first, then needing attention; by name within each
    (client_list's order); and how many clients have each status."""
    by_client: dict[int, list[Dataset]] = defaultdict(list)
    for dataset in datasets:
        by_client[dataset.client_id].append(dataset)
    rows = (
        replace(
            client_health(
                client,
                by_client.get(client.pk, []),
                protections,
                drills,
                alerts.failed_titles.get(client.pk, []),
                alerts.per_client.get(client.pk, 0),
                now,
            ),
            deletion=(deletions or {}).get(client.pk),
        )
        for client in clients
    )
    health = tuple(sorted(rows, key=lambda row: HEALTH_ORDER[row.status]))
    counts = dict.fromkeys((RED, AMBER, GREEN), 0)
    for row in health:
        counts[row.status] += 1
    return health, counts


def _verified_deletions(actor: Actor) -> dict[int, DeletionRequest]:
    """The latest verified deletion with its certificate, per client (one query)."""
    latest: dict[int, DeletionRequest] = {}
    for request in (
        DeletionRequest.objects.visible_to(actor)
        .filter(state=DeletionState.VERIFIED, certificate__isnull=False)
        .order_by("-verified_at", "-id")
    ):
        latest.setdefault(request.client_id, request)
    return latest


def _stale_datasets(
    datasets: list[Dataset], protections: dict[int, ProtectionStatus], now: datetime
) -> tuple[StaleDataset, ...]:
    """Live datasets past their RPO: never backed up first, then the oldest good backup."""
    stale = sorted(
        (
            StaleDataset(
                dataset=dataset,
                last_good_at=status.last_good_at,
                age=now - status.last_good_at if status.last_good_at else None,
            )
            for dataset in datasets
            if (status := protections.get(dataset.pk)) is not None
            and not status.retired
            and not status.rpo_met
        ),
        key=lambda row: (row.last_good_at is not None, row.last_good_at or now, row.dataset.name),
    )
    return tuple(stale)


def _failed_runs_today(actor: Actor, now: datetime) -> tuple[BackupRun, ...]:
    midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    return tuple(
        BackupRun.objects.visible_to(actor)
        .filter(status=RunStatus.FAILED, finished_at__gte=midnight, finished_at__lte=now)
        .select_related("dataset", "dataset__client")
        .order_by("-finished_at", "-id")[:ROWS_SHOWN]
    )


def _pending_approvals(actor: Actor) -> tuple[DeletionRequest, ...]:
    return tuple(
        DeletionRequest.objects.visible_to(actor)
        .filter(state=DeletionState.DRAFTED)
        .select_related("client", "engagement", "dataset", "requested_by")
        .order_by("created_at", "id")[:ROWS_SHOWN]
    )


def _deletions_due(actor: Actor, now: datetime) -> tuple[RetentionObligation, ...]:
    """Obligations whose deletion falls due within DELETIONS_DUE_WITHIN and is not drafted."""
    today = now.astimezone(UTC).date()
    return tuple(
        RetentionObligation.objects.visible_to(actor)
        .filter(
            kind=ObligationKind.DELETE_AFTER_ENGAGEMENT,
            due_on__isnull=False,
            due_on__lte=today + DELETIONS_DUE_WITHIN,
            drafted_request__isnull=True,
        )
        .select_related("client", "engagement", "dataset")
        .order_by("due_on", "id")[:ROWS_SHOWN]
    )


def _storage_by_tier(cost: CostReport) -> tuple[TierUsage, ...]:
    return tuple(
        TierUsage(
            tier=line.key, label=cost.names.get(line.key, line.key), bytes=line.bytes, usd=line.usd
        )
        for line in cost.by_tier
    )


def dashboard_overview(*, actor: Actor, now: datetime | None = None) -> DashboardOverview:
    """Everything the dashboard shows, for what `actor` may see, in a fixed number of queries."""
    now = now or timezone.now()
    clients = list(client_list(actor=actor))
    datasets = list(
        Dataset.objects.visible_to(actor)
        .exclude(lifecycle_state__in=RETIRED_STATES)
        .select_related("client")
        .order_by("client_id", "name", "id")
    )
    protections = protection_status_many(datasets, now=now)
    drills = drill_status_many(datasets, now=now)
    alerts = _unresolved_alerts(actor)
    health, health_counts = _clients_health(
        clients, datasets, protections, drills, alerts, now, _verified_deletions(actor)
    )
    stale = _stale_datasets(datasets, protections, now)
    failed_today = _failed_runs_today(actor, now)
    runs_by_day = _runs_by_day(actor, now)
    pending = _pending_approvals(actor)
    due = _deletions_due(actor, now)
    cost = cost_estimate(actor=actor, now=now)
    return DashboardOverview(
        now=now,
        whole_organization=actor.sees_whole_organization,
        clients=health,
        health_counts=health_counts,
        alerts=tuple(
            AlertRow(a, alert_may_acknowledge(actor=actor, alert=a)) for a in alerts.latest
        ),
        open_alert_count=sum(alerts.per_client.values()),
        failed_runs_today=failed_today,
        failed_today_count=runs_by_day[-1].failed,
        stale_datasets=stale,
        findings=_findings(actor),
        pending_approvals=pending,
        deletions_due=due,
        cost=cost,
        storage_by_tier=_storage_by_tier(cost),
        runs_by_day=runs_by_day,
    )
