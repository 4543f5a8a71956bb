"""The health dashboard: one read composing every app's status for what an actor may see.

`dashboard_overview` starts from the actor's visible clients, datasets, alerts, runs, locations,
deletion requests and obligations (each through `visible_to`), and asks the backup app's
batch services for 3-2-1, drill status, posture and cost. It runs a fixed number of queries
however many clients there are (tests/lifecycle/test_dashboard.py pins it).

Client health (the rule the page states in one line):
- red: a live dataset missed its RPO, has an open "backup failed" alert, or fails the 3-2-1
  copies rule (fewer than three fresh copies);
- amber: 3-2-1 fails on media, offsite or history, a dataset has no successful restore drill
  within its period, or the client's review is due;
- green: none of these. Deleted datasets and those pending deletion are not judged.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import cast

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from backups.models import (
    SEVERITY_RANK,
    Alert,
    AlertKind,
    AlertState,
    BackupRun,
    PostureFinding,
    RunStatus,
    Severity,
)
from backups.selectors import latest_audits
from backups.services.assurance import ProtectionStatus, duration_words, protection_status_many
from backups.services.cost import CostReport, cost_estimate
from backups.services.drills import DrillStatus, drill_status_many
from clients.models import Client, Dataset, LifecycleState, StorageLocation
from clients.selectors import client_list, location_list
from kernel.charts import Series, bar_chart, stacked_bar_chart
from kernel.tenancy import Actor
from lifecycle.models import DeletionRequest, DeletionState, ObligationKind, RetentionObligation

GREEN, AMBER, RED = "green", "amber", "red"
HEALTH_LABELS = {GREEN: "Healthy", AMBER: "Needs attention", RED: "At risk"}
HEALTH_ORDER = {RED: 0, AMBER: 1, GREEN: 2}
HEALTH_RULE = (
    "Red: a dataset missed its RPO, its last backup to a target failed, or it has fewer than "
    "3 fresh copies. Amber: 3-2-1 fails on media, offsite or history, a restore drill is not "
    "within its period, or the client's review is due. Green: none of these."
)
RETIRED_STATES = (LifecycleState.DELETED, LifecycleState.DELETION_PENDING)
ALERTS_SHOWN = 10
ROWS_SHOWN = 20
FINDINGS_SHOWN = 15
CHART_DAYS = 30
DELETIONS_DUE_WITHIN = timedelta(days=30)
SUCCESS_COLOR = "#1f7a3a"
FAILURE_COLOR = "#b3261e"
STORAGE_COLOR = "#2450a6"


@dataclass(frozen=True)
class ClientHealth:
    client: Client
    status: str  # GREEN, AMBER or RED
    reasons: tuple[str, ...]  # red ones first
    datasets: int
    open_alerts: int

    @property
    def label(self) -> str:
        return HEALTH_LABELS[self.status]


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


def _may_acknowledge(actor: Actor, alert: Alert) -> bool:
    """Mirrors `alert_acknowledge`: admins any alert, leads one of a client they manage."""
    if alert.state != AlertState.OPEN:
        return False
    if alert.client_id is None:
        return actor.is_admin
    return actor.may("manage", client_id=alert.client_id, dataset_id=alert.dataset_id)


def _posture_url(location: StorageLocation) -> str:
    return reverse("location-posture", args=[location.public_id])


def _dataset_reasons(
    dataset: Dataset,
    protection: ProtectionStatus | None,
    drill: DrillStatus | None,
    now: datetime,
) -> tuple[list[str], list[str]]:
    """(red reasons, amber reasons) of one live dataset."""
    red: list[str] = []
    amber: list[str] = []
    name = dataset.name
    if protection is not None and not protection.retired:
        if not protection.rpo_met:
            if protection.last_good_at is None:
                red.append(f"{name}: no good backup yet (RPO {duration_words(dataset.rpo)})")
            else:
                age = duration_words(now - protection.last_good_at)
                red.append(
                    f"{name}: last good backup {age} ago, RPO is {duration_words(dataset.rpo)}"
                )
        for rule in protection.rules:
            if rule.met:
                continue
            (red if rule.name == "copies" else amber).append(f"{name}: {rule.reason}")
    if drill is not None and not drill.within_period:
        last = drill.last
        if last is None:
            amber.append(f"{name}: never restored in a drill")
        elif last.status == RunStatus.FAILED:
            amber.append(f"{name}: the last restore drill failed ({last.finished_at:%Y-%m-%d})")
        else:
            amber.append(f"{name}: no successful restore drill within its period")
    return red, amber


def _health(
    client: Client,
    datasets: list[Dataset],
    protections: dict[int, ProtectionStatus],
    drills: dict[int, DrillStatus],
    failed_alerts: list[str],
    open_alerts: int,
    now: datetime,
) -> ClientHealth:
    red = list(failed_alerts)
    amber: list[str] = []
    for dataset in datasets:
        more_red, more_amber = _dataset_reasons(
            dataset, protections.get(dataset.pk), drills.get(dataset.pk), now
        )
        red.extend(more_red)
        amber.extend(more_amber)
    if client.next_review_at <= now:
        amber.append(f"review due since {client.next_review_at:%Y-%m-%d}")
    status = RED if red else AMBER if amber else GREEN
    return ClientHealth(
        client=client,
        status=status,
        reasons=tuple(dict.fromkeys(red + amber)),
        datasets=len(datasets),
        open_alerts=open_alerts,
    )


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

    unresolved = Alert.objects.visible_to(actor).unresolved()
    latest_alerts = list(
        unresolved.select_related("client", "dataset", "location", "acknowledged_by").order_by(
            "-opened_at", "-id"
        )[:ALERTS_SHOWN]
    )
    alerts_per_client: dict[int | None, int] = {
        row["client_id"]: row["n"]
        for row in unresolved.values("client_id").annotate(n=Count("id")).order_by()
    }
    failed_alerts: dict[int, list[str]] = defaultdict(list)
    for client_id, title in unresolved.filter(kind=AlertKind.BACKUP_FAILED).values_list(
        "client_id", "title"
    ):
        if client_id is not None:
            failed_alerts[client_id].append(title)

    by_client: dict[int, list[Dataset]] = defaultdict(list)
    for dataset in datasets:
        by_client[dataset.client_id].append(dataset)
    rows = (
        _health(
            client,
            by_client.get(client.pk, []),
            protections,
            drills,
            failed_alerts.get(client.pk, []),
            alerts_per_client.get(client.pk, 0),
            now,
        )
        for client in clients
    )
    # At risk first, then needing attention; by name within each (client_list's order).
    health = tuple(sorted(rows, key=lambda row: HEALTH_ORDER[row.status]))
    health_counts = dict.fromkeys((RED, AMBER, GREEN), 0)
    for row in health:
        health_counts[row.status] += 1

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

    midnight = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    failed_today = list(
        BackupRun.objects.visible_to(actor)
        .filter(status=RunStatus.FAILED, finished_at__gte=midnight, finished_at__lte=now)
        .select_related("dataset", "dataset__client")
        .order_by("-finished_at", "-id")[:ROWS_SHOWN]
    )
    runs_by_day = _runs_by_day(actor, now)

    pending = list(
        DeletionRequest.objects.visible_to(actor)
        .filter(state=DeletionState.DRAFTED)
        .select_related("client", "engagement", "dataset", "requested_by")
        .order_by("created_at", "id")[:ROWS_SHOWN]
    )
    today = now.astimezone(UTC).date()
    due = list(
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

    cost = cost_estimate(actor=actor, now=now)
    tiers = tuple(
        TierUsage(
            tier=line.key, label=cost.names.get(line.key, line.key), bytes=line.bytes, usd=line.usd
        )
        for line in cost.by_tier
    )
    return DashboardOverview(
        now=now,
        whole_organization=actor.sees_whole_organization,
        clients=health,
        health_counts=health_counts,
        alerts=tuple(AlertRow(a, _may_acknowledge(actor, a)) for a in latest_alerts),
        open_alert_count=sum(alerts_per_client.values()),
        failed_runs_today=tuple(failed_today),
        failed_today_count=runs_by_day[-1].failed,
        stale_datasets=tuple(stale),
        findings=_findings(actor),
        pending_approvals=tuple(pending),
        deletions_due=tuple(due),
        cost=cost,
        storage_by_tier=tiers,
        runs_by_day=runs_by_day,
    )


# --- charts ---


def _size(value: int) -> str:
    from django.template.defaultfilters import filesizeformat

    return str(filesizeformat(value)).replace("\xa0", " ")


def success_chart(overview: DashboardOverview) -> SafeString:
    days = overview.runs_by_day
    succeeded = sum(d.succeeded for d in days)
    failed = sum(d.failed for d in days)
    return stacked_bar_chart(
        chart_id="chart-backup-success",
        title=f"Backup runs per day, last {len(days)} days",
        description=(
            f"{succeeded} succeeded and {failed} failed between {days[0].day:%Y-%m-%d} and "
            f"{days[-1].day:%Y-%m-%d} (UTC), stacked per day."
        ),
        labels=[f"{d.day:%m-%d}" for d in days],
        series=[
            Series("Succeeded", [d.succeeded for d in days], SUCCESS_COLOR),
            Series("Failed", [d.failed for d in days], FAILURE_COLOR),
        ],
    )


def storage_chart(overview: DashboardOverview) -> SafeString:
    tiers = overview.storage_by_tier
    return bar_chart(
        chart_id="chart-storage-by-tier",
        title="Backup storage by tier",
        description="; ".join(f"{t.label}: {_size(t.bytes)}, ${t.usd:.2f} a month" for t in tiers)
        or "No backup is stored yet.",
        labels=[t.label for t in tiers],
        values=[t.bytes for t in tiers],
        value_labels=[f"{_size(t.bytes)} · ${t.usd:.2f}" for t in tiers],
        color=STORAGE_COLOR,
        empty_text="No backup is stored yet.",
    )
