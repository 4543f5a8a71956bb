"""The assurance sweep (missed RPOs, due reviews) and recording reviews.

The sweep runs periodically over every organization with a fixed number of reads per
organization; it raises an alert for each new incident and clears those whose condition is gone.
What the run hooks already raise and clear (failed backups) is not its business.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from backups.models import (
    Alert,
    AlertKind,
    BackupPolicy,
    Review,
    ReviewSubject,
    Severity,
)
from backups.services.alerts import alert_clear, alert_raise
from clients.models import (
    REVIEW_PERIOD,
    Client,
    ClientStatus,
    Dataset,
    LifecycleState,
    Organization,
)
from kernel.exceptions import NotFound, ValidationFailed
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    raised: int = 0
    cleared: int = 0
    still_open: int = 0


def _age(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours >= 1:
        return f"{hours} hours"
    return f"{int(delta.total_seconds() // 60)} minutes"


def rpo_key(dataset: Dataset) -> str:
    return f"rpo_missed:{dataset.public_id}"


def review_key(subject: Client | BackupPolicy) -> str:
    kind = "client" if isinstance(subject, Client) else "policy"
    return f"review_due:{kind}:{subject.public_id}"


def assurance_sweep(now: datetime | None = None) -> SweepReport:
    """Every organization: active datasets whose newest good snapshot (or, with none, their
    registration) is older than their RPO raise "rpo_missed"; clients and policies past their
    next review date raise "review_due". Incidents whose condition is gone are cleared."""
    now = now or timezone.now()
    report = SweepReport()
    for organization in Organization.objects.order_by("pk"):
        _sweep_organization(organization, now, report)
    return report


def _sweep_organization(organization: Organization, now: datetime, report: SweepReport) -> None:
    # Read 1: the datasets the RPO applies to, with their newest good snapshot.
    datasets = (
        Dataset.objects.filter(
            organization=organization,
            lifecycle_state=LifecycleState.ACTIVE,
            protection__policy__isnull=False,
        )
        .select_related("client")
        .annotate(
            last_good=Max("snapshots__taken_at", filter=Q(snapshots__forgotten_at__isnull=True))
        )
    )
    # Reads 2-3: clients and policies due for review.
    clients = Client.objects.filter(organization=organization, next_review_at__lte=now).exclude(
        status=ClientStatus.CLOSED
    )
    policies = BackupPolicy.objects.filter(organization=organization, next_review_at__lte=now)
    # Read 4: the incidents of these kinds that are open now.
    open_alerts = dict(
        Alert.objects.filter(
            organization=organization, kind__in=[AlertKind.RPO_MISSED, AlertKind.REVIEW_DUE]
        )
        .unresolved()
        .values_list("incident_key", "pk")
    )
    wanted: set[str] = set()
    for dataset in datasets:
        last_good: datetime | None = dataset.last_good  # type: ignore[attr-defined]  # annotation
        reference = last_good or dataset.created_at
        if reference >= now - dataset.rpo:
            continue
        key = rpo_key(dataset)
        wanted.add(key)
        if key in open_alerts:
            continue
        _rpo_missed_raise(organization, dataset, key, last_good, now)
        report.raised += 1
    subjects: list[Client | BackupPolicy] = [*clients, *policies]
    for subject in subjects:
        key = review_key(subject)
        wanted.add(key)
        if key in open_alerts:
            continue
        _review_due_raise(organization, subject, key, now)
        report.raised += 1
    _settle(organization, open_alerts, wanted, now, report)


def _rpo_missed_raise(
    organization: Organization,
    dataset: Dataset,
    key: str,
    last_good: datetime | None,
    now: datetime,
) -> None:
    if last_good is None:
        what = (
            f"{dataset.name} (client {dataset.client.name}) has no good snapshot "
            f"{_age(now - dataset.created_at)} after it was registered"
        )
    else:
        what = (
            f"The newest good snapshot of {dataset.name} (client {dataset.client.name}) "
            f"was taken {_age(now - last_good)} ago, at {last_good:%Y-%m-%d %H:%M} UTC"
        )
    alert_raise(
        organization=organization,
        kind=AlertKind.RPO_MISSED,
        incident_key=key,
        title=f"RPO missed: {dataset.name} ({dataset.client.name})",
        message=f"{what}; its RPO is {_age(dataset.rpo)}.",
        severity=Severity.HIGH,
        dataset=dataset,
        client=dataset.client,
        now=now,
    )


def _review_due_raise(
    organization: Organization, subject: Client | BackupPolicy, key: str, now: datetime
) -> None:
    noun = "client" if isinstance(subject, Client) else "backup policy"
    alert_raise(
        organization=organization,
        kind=AlertKind.REVIEW_DUE,
        incident_key=key,
        title=f"Review due: {noun} {subject.name}",
        message=(
            f"The protection of the {noun} {subject.name} was due for review on "
            f"{subject.next_review_at:%Y-%m-%d}. Someone must confirm it still fits."
        ),
        severity=Severity.LOW,
        client=subject if isinstance(subject, Client) else None,
        policy=subject if isinstance(subject, BackupPolicy) else None,
        now=now,
    )


def _settle(
    organization: Organization,
    open_alerts: dict[str, int],
    wanted: set[str],
    now: datetime,
    report: SweepReport,
) -> None:
    """Incidents still wanted were seen again now; the others are cleared."""
    still = [pk for key, pk in open_alerts.items() if key in wanted]
    if still:
        # Write 5: the incidents that persist were seen again now (not a new occurrence).
        Alert.objects.filter(pk__in=still).update(last_seen_at=now)
        report.still_open += len(still)
    for key in open_alerts.keys() - wanted:
        kind = key.split(":", 1)[0]
        resolution = (
            "A good snapshot is within the RPO again."
            if kind == AlertKind.RPO_MISSED
            else "The review is no longer due."
        )
        if alert_clear(organization=organization, incident_key=key, resolution=resolution, now=now):
            report.cleared += 1


@transaction.atomic
def review_record(
    *,
    actor: Actor,
    client: Client | None = None,
    policy: BackupPolicy | None = None,
    note: str = "",
    next_review_at: datetime | None = None,
    now: datetime | None = None,
) -> Review:
    """An owner or admin confirms a client's (or a policy's) protection still fits: the next
    review is due REVIEW_PERIOD later (or when given), and the "review due" alert resolves."""
    actor.require_admin("record reviews")
    if (client is None) == (policy is None):
        raise ValidationFailed(
            "Review either a client or a policy.",
            fields={"client": "Give a client or a policy, not both."},
        )
    subject: Client | BackupPolicy = client if client is not None else policy  # type: ignore[assignment]  # one is set (checked above)
    if subject.organization_id != actor.organization_id:
        raise NotFound()
    now = now or timezone.now()
    if next_review_at is None:
        next_review_at = now + REVIEW_PERIOD
    elif next_review_at <= now:
        raise ValidationFailed(
            "The next review must be in the future.",
            fields={"next_review_at": "Pick a date in the future."},
        )
    # Lock the subject so two reviews recorded at once leave the later date, not a mix.
    locked = type(subject).objects.select_for_update().get(pk=subject.pk)
    locked.next_review_at = next_review_at
    locked.save(update_fields=["next_review_at", "updated_at"])
    subject.next_review_at = next_review_at
    review = Review(
        organization=actor.organization,
        subject=ReviewSubject.CLIENT if client is not None else ReviewSubject.POLICY,
        client=client,
        policy=policy,
        reviewed_by=actor.user,
        reviewed_at=now,
        note=note,
        next_review_at=next_review_at,
    )
    review.full_clean()
    review.save()
    who = getattr(actor.user, "username", "the system")
    alert_clear(
        organization=actor.organization,
        incident_key=review_key(subject),
        resolution=(
            f"Reviewed by {who} on {now:%Y-%m-%d}; next review due {next_review_at:%Y-%m-%d}."
        ),
        now=now,
    )
    return review
