"""Alerts: one record per incident, one notice when it opens and one when it resolves.

`alert_raise` is called by whatever noticed the problem (a failed backup run, the assurance
sweep, a drill, a posture audit); `alert_clear` by whatever noticed it is gone. A repeat of an
unresolved incident only counts an occurrence. Notices (e-mail to the dataset owner and the
organization's owners/admins, plus an optional webhook) are AlertDelivery rows sent right after
the commit, in the same process: the task that noticed the problem is the one that tells people.
Each delivery is claimed by a conditional update before it is sent, so a retried task or the
periodic retry never sends it twice; a failed send is retried with backoff. The notices and the
organization's notification settings live in `backups.services.notifications`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from backups.models import (
    Alert,
    AlertKind,
    AlertState,
    BackupPolicy,
    BackupRun,
    DeliveryEvent,
    RunTarget,
    Severity,
)
from backups.selectors import alert_list as alert_list  # lifecycle/views.py imports it here
from backups.services.notifications import _deliveries_create
from clients.models import Client, Dataset, Organization, StorageLocation
from kernel.exceptions import Conflict
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)


# --- raising and clearing ---


def _unresolved(organization: Organization, incident_key: str) -> Alert | None:
    # select_for_update locks the row on PostgreSQL (no effect on SQLite, whose write
    # transactions are serialized anyway).
    return (
        Alert.objects.select_for_update()
        .filter(organization=organization, incident_key=incident_key)
        .exclude(state=AlertState.RESOLVED)
        .first()
    )


def _bump(alert: Alert, *, message: str, now: datetime) -> Alert:
    Alert.objects.filter(pk=alert.pk).update(
        occurrences=F("occurrences") + 1, last_seen_at=now, message=message
    )
    alert.refresh_from_db()
    return alert


def alert_raise(
    *,
    organization: Organization,
    kind: str,
    incident_key: str,
    title: str,
    message: str,
    severity: str = Severity.HIGH,
    client: Client | None = None,
    dataset: Dataset | None = None,
    location: StorageLocation | None = None,
    policy: BackupPolicy | None = None,
    now: datetime | None = None,
) -> Alert:
    """Open an alert for this incident and send its notices after the commit; if the incident
    is already open (or acknowledged), count one more occurrence and send nothing."""
    now = now or timezone.now()
    if client is None and dataset is not None:
        client = dataset.client
    if client is None and location is not None and location.client_id is not None:
        client = location.client
    with transaction.atomic():
        existing = _unresolved(organization, incident_key)
        if existing is not None:
            return _bump(existing, message=message, now=now)
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    organization=organization,
                    kind=kind,
                    incident_key=incident_key,
                    severity=severity,
                    title=title[:300],
                    message=message,
                    client=client,
                    dataset=dataset,
                    location=location,
                    policy=policy,
                    opened_at=now,
                    last_seen_at=now,
                )
        except IntegrityError:
            # Another process opened the same incident between our read and our insert.
            existing = _unresolved(organization, incident_key)
            if existing is None:
                raise
            return _bump(existing, message=message, now=now)
        _deliveries_create(alert, DeliveryEvent.OPENED)
    logger.info("alert opened: %s (%s)", incident_key, alert.public_id)
    return alert


def alert_clear(
    *,
    organization: Organization,
    incident_key: str,
    resolution: str,
    now: datetime | None = None,
) -> Alert | None:
    """Resolve the unresolved alert of this incident and send the "resolved" notice after the
    commit. None when nothing was open."""
    now = now or timezone.now()
    with transaction.atomic():
        alert = _unresolved(organization, incident_key)
        if alert is None:
            return None
        resolved = (
            Alert.objects.filter(pk=alert.pk)
            .exclude(state=AlertState.RESOLVED)
            .update(state=AlertState.RESOLVED, resolved_at=now, resolution=resolution)
        )
        if not resolved:
            return None
        alert.refresh_from_db()
        _deliveries_create(alert, DeliveryEvent.RESOLVED)
    logger.info("alert resolved: %s (%s)", incident_key, alert.public_id)
    return alert


def alert_may_acknowledge(*, actor: Actor, alert: Alert) -> bool:
    """Whether `alert_acknowledge` would act for this actor now: an open alert, of a client the
    actor manages (organization-wide alerts: admins). Pages show or hide the button by it."""
    if alert.state != AlertState.OPEN:
        return False
    if alert.client_id is None:
        return actor.is_admin
    return actor.may("manage", client_id=alert.client_id, dataset_id=alert.dataset_id)


def alert_acknowledge(*, actor: Actor, alert: Alert, note: str = "") -> Alert:
    """Someone is on it: the alert stays unresolved (a repeat still sends nothing) until the
    incident clears. Owners and admins may acknowledge any alert; leads one about a client they
    hold `manage` on. Acknowledging twice changes nothing."""
    if alert.client_id is None:
        actor.require_admin("acknowledge organization-wide alerts")
    else:
        actor.require_level(
            "manage",
            client_id=alert.client_id,
            dataset_id=alert.dataset_id,
            action="acknowledge this alert",
        )
    if alert.state == AlertState.RESOLVED:
        raise Conflict("The alert is already resolved.")
    if alert.state == AlertState.ACKNOWLEDGED:
        return alert
    now = timezone.now()
    Alert.objects.filter(pk=alert.pk, state=AlertState.OPEN).update(
        state=AlertState.ACKNOWLEDGED,
        acknowledged_at=now,
        acknowledged_by=actor.user,
        acknowledgement_note=note[:2000],
    )
    alert.refresh_from_db()
    logger.info("alert %s acknowledged by user %s", alert.public_id, actor.user_id)
    return alert


# --- the run hooks ---


def backup_failed_raise(run_id: int, error: str, *, now: datetime | None = None) -> None:
    """A backup run failed for good: one incident per (dataset, target) of the run."""
    run = (
        BackupRun.objects.select_related("organization", "dataset", "dataset__client")
        .filter(pk=run_id)
        .first()
    )
    if run is None:
        return
    dataset = run.dataset
    for target in RunTarget.objects.filter(run_id=run_id).select_related("location"):
        location = target.location
        alert_raise(
            organization=run.organization,
            kind=AlertKind.BACKUP_FAILED,
            incident_key=f"backup_failed:{dataset.public_id}:{location.public_id}",
            title=f"Backup failed: {dataset.name} → {location.name}",
            message=(
                f"The backup of {dataset.name} (client {dataset.client.name}) to "
                f"{location.name} ({location.display_uri}) failed: {error}"
            ),
            severity=Severity.HIGH,
            dataset=dataset,
            location=location,
            now=now,
        )


def backup_succeeded_clear(
    dataset: Dataset,
    locations: Iterable[StorageLocation],
    *,
    taken_at: datetime,
    now: datetime | None = None,
) -> None:
    """A backup reached these targets: their failure incidents are over, and the RPO one too
    when the new snapshot is recent enough."""
    now = now or timezone.now()
    organization = dataset.organization
    for location in locations:
        alert_clear(
            organization=organization,
            incident_key=f"backup_failed:{dataset.public_id}:{location.public_id}",
            resolution=f"A backup to {location.name} succeeded at {now:%Y-%m-%d %H:%M} UTC.",
            now=now,
        )
    if taken_at >= now - dataset.rpo:
        alert_clear(
            organization=organization,
            incident_key=f"rpo_missed:{dataset.public_id}",
            resolution=f"A snapshot taken at {taken_at:%Y-%m-%d %H:%M} UTC is within the RPO.",
            now=now,
        )
