"""Audits: read a location's bucket, record what was found, and let alerts follow the
comparison with the previous audit; the daily audit of every S3 location; reads for the API
and pages."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, cast

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from backups.models import (
    Alert,
    AlertKind,
    AuditTrigger,
    PolicyTarget,
    PostureAudit,
    PostureCheck,
    PostureFinding,
    Severity,
)
from backups.services import alerts as alert_service
from backups.services.posture.findings import _LABELS, Finding, posture_findings
from backups.services.posture.reading import _read
from clients.models import LocationKind, StorageLocation
from kernel.exceptions import NotFound, ValidationFailed
from kernel.tenancy import Actor, parse_public_id

logger = logging.getLogger(__name__)

# Findings at these severities open an alert when they newly appear.
ALERTING = frozenset({Severity.CRITICAL, Severity.HIGH})
# The daily audit skips a location audited on schedule this recently (a re-run of the task).
SCHEDULED_AUDIT_EVERY = timedelta(hours=12)


# LocationScopedQuerySet is declared over Model (it serves three models); these name the rows.


def _audits(qs: Any) -> QuerySet[PostureAudit]:
    return cast("QuerySet[PostureAudit]", qs)


def _findings(qs: Any) -> QuerySet[PostureFinding]:
    return cast("QuerySet[PostureFinding]", qs)


def _previous_audits(location: StorageLocation) -> tuple[PostureAudit | None, PostureAudit | None]:
    """The latest audit of the location and the latest one that reached the bucket."""
    recent = list(
        _audits(PostureAudit.objects.filter(location=location))
        .order_by("-audited_at", "-id")
        .prefetch_related("findings")[:1]
    )
    last = recent[0] if recent else None
    if last is None or last.reachable:
        return last, last
    reached = (
        _audits(PostureAudit.objects.filter(location=location, reachable=True))
        .order_by("-audited_at", "-id")
        .prefetch_related("findings")
        .first()
    )
    return last, reached


def _failing(audit: PostureAudit | None) -> set[str]:
    if audit is None:
        return set()
    return {f.check_name for f in _findings(audit.findings.all()) if f.severity in ALERTING}


def _alerts_follow(
    location: StorageLocation,
    findings: list[Finding],
    *,
    reachable: bool,
    last: PostureAudit | None,
    last_reached: PostureAudit | None,
    now: datetime,
) -> None:
    """Regressions open alerts, recoveries clear them. A check compares with the last audit
    that reached the bucket (an outage in between is no regression of every setting); the
    very first audit alerts on its critical findings, since a new unversioned bucket is an
    incident already."""
    organization = location.organization
    key_prefix = f"posture:{location.public_id}:"
    current = {f.check: f for f in findings if f.severity in ALERTING}
    if last is None:
        new = {c: f for c, f in current.items() if f.severity == Severity.CRITICAL}
    elif not reachable:
        new = {c: f for c, f in current.items() if last.reachable}
    elif last_reached is None:
        new = {c: f for c, f in current.items() if f.severity == Severity.CRITICAL}
    else:
        before = _failing(last_reached)
        new = {c: f for c, f in current.items() if c not in before}
    for check, finding in new.items():
        title = (
            f"Bucket unreachable: {location.name}"
            if check == PostureCheck.REACHABLE
            else f"Storage protection weakened: {_LABELS[check].lower()} on {location.name}"
        )
        alert_service.alert_raise(
            organization=organization,
            kind=AlertKind.POSTURE_REGRESSION,
            incident_key=key_prefix + check,
            title=title,
            message=finding.message,
            severity=finding.severity,
            location=location,
            now=now,
        )
    if not reachable:
        return  # nothing is known about the other settings until the bucket answers again
    open_keys = (
        Alert.objects.unresolved()
        .filter(organization=organization, incident_key__startswith=key_prefix)
        .values_list("incident_key", flat=True)
    )
    for key in list(open_keys):
        check = key.removeprefix(key_prefix)
        if check not in current:
            alert_service.alert_clear(
                organization=organization,
                incident_key=key,
                resolution=f"The posture audit of {now:%Y-%m-%d %H:%M} UTC found "
                f"{_LABELS.get(check, check).lower()} in order again.",
                now=now,
            )


def _policy_retention(location: StorageLocation) -> list[dict[str, Any]]:
    """The Object Lock retention the policies ask of this location, beside what the bucket
    itself sets: posture and evidence show both."""
    rows = (
        PolicyTarget.objects.filter(location=location)
        .exclude(object_lock_mode="")
        .select_related("policy")
        .order_by("policy__name", "policy_id")
    )
    return [
        {
            "policy": str(t.policy.public_id),
            "policy_name": t.policy.name,
            "mode": t.object_lock_mode,
            "days": t.object_lock_days,
        }
        for t in rows
    ]


def location_audit(
    location: StorageLocation,
    *,
    trigger: str,
    actor: Actor | None = None,
    now: datetime | None = None,
) -> PostureAudit:
    """Read the location's bucket settings and record them with their findings. A person
    asking (`actor`) must be an owner or admin. Local directories have no bucket settings and
    are refused. An unreachable bucket is recorded (reachable=False, a `reachable` finding),
    never raised. Alerts follow the comparison with the previous audit."""
    now = now or timezone.now()
    if actor is not None:
        actor.require_admin("audit a storage location's protection")
        if location.organization_id != actor.organization_id:
            raise NotFound()
    if location.kind != LocationKind.S3:
        raise ValidationFailed(
            "Only S3 locations are audited; a local directory has no bucket settings.",
            fields={"location": "Pick an S3 location."},
        )
    if trigger not in AuditTrigger.values:
        raise ValidationFailed("Unknown audit trigger.", fields={"trigger": "Unknown trigger."})
    # The storage service is asked outside any transaction: no row waits on the network.
    reading = _read(location)
    facts = (
        {**reading.facts, "policy_retention": _policy_retention(location)}
        if reading.reachable
        else reading.facts
    )
    findings = posture_findings(
        reachable=reading.reachable,
        error=reading.error,
        facts=facts,
        prefix=location.prefix,
    )
    with transaction.atomic():
        last, last_reached = _previous_audits(location)
        audit = PostureAudit.objects.create(
            organization_id=location.organization_id,
            location=location,
            audited_at=now,
            trigger=trigger,
            requested_by=actor.user if actor is not None else None,
            reachable=reading.reachable,
            error=reading.error,
            facts=facts,
        )
        PostureFinding.objects.bulk_create(
            PostureFinding(
                organization_id=location.organization_id,
                audit=audit,
                location=location,
                check_name=f.check,
                severity=f.severity,
                message=f.message,
                fix_action=f.fix_action,
            )
            for f in findings
        )
        _alerts_follow(
            location,
            findings,
            reachable=reading.reachable,
            last=last,
            last_reached=last_reached,
            now=now,
        )
    logger.info(
        "posture audit of location %s: reachable=%s, %d findings",
        location.public_id,
        reading.reachable,
        len(findings),
    )
    return audit


def posture_audit_all(now: datetime | None = None) -> list[PostureAudit]:
    """The daily audit: every S3 location of every organization. A location that fails for
    any reason is logged and skipped; the others are still audited. A location audited on
    schedule within the last 12 hours is skipped, so a re-delivered task adds nothing."""
    now = now or timezone.now()
    recent = set(
        PostureAudit.objects.unscoped_for_system_task()
        .filter(trigger=AuditTrigger.SCHEDULED, audited_at__gt=now - SCHEDULED_AUDIT_EVERY)
        .values_list("location_id", flat=True)
    )
    locations = (
        StorageLocation.objects.unscoped_for_system_task()
        .filter(kind=LocationKind.S3)
        .exclude(pk__in=recent)
        .select_related("organization", "client")
        .order_by("pk")
    )
    audits: list[PostureAudit] = []
    for location in locations:
        try:
            audits.append(location_audit(location, trigger=AuditTrigger.SCHEDULED, now=now))
        except Exception:
            # One broken location (a credential that no longer unseals, a database hiccup)
            # must not leave every other bucket unaudited.
            logger.exception("posture audit of location %s failed", location.public_id)
    return audits


def location_audit_by_id(
    location_id: str, *, trigger: str = AuditTrigger.MANUAL, now: datetime | None = None
) -> PostureAudit | None:
    """The on-demand task's entry: audit one S3 location by public id, as the system. None
    when it no longer exists (or is a local directory)."""
    public_id = parse_public_id(location_id)
    if public_id is None:
        return None
    location = (
        StorageLocation.objects.unscoped_for_system_task()
        .filter(public_id=public_id, kind=LocationKind.S3)
        .select_related("organization", "client")
        .first()
    )
    if location is None:
        return None
    return location_audit(location, trigger=trigger, now=now)
