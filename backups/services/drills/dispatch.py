"""The daily drill dispatch: start the drills that are due, raise drill_overdue, and sweep the
scratch directories that drills left behind."""

from __future__ import annotations

import logging
import shutil
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from backups.models import (
    ACTIVE_RUN_STATES,
    AlertKind,
    DatasetProtection,
    RestoreRun,
    Severity,
    Snapshot,
)
from backups.selectors.drills import DrillFacts, drill_facts, drill_status_of
from backups.services.alerts import alert_raise
from backups.services.drills.run import (
    DRILLABLE_STATES,
    drill_incident_key,
    drill_start,
    duration_words,
    scratch_root,
)
from clients.models import Dataset
from kernel.exceptions import Conflict, ValidationFailed
from kernel.tenancy import parse_public_id

logger = logging.getLogger(__name__)

# The drill_overdue alert waits this long past the drill period: a week to fix a failed drill.
OVERDUE_GRACE = timedelta(days=7)


def _overdue_since(facts: DrillFacts) -> datetime | None:
    """When the dataset's drill became overdue: its period plus a week after the last
    successful drill (or after its first snapshot, if it never had one)."""
    if facts.drill_every is None:
        return None
    good = facts.last_good
    reference = good.finished_at if good is not None else facts.first_snapshot_at
    if reference is None:
        return None
    return reference + facts.drill_every + OVERDUE_GRACE


def _dispatch_one(dataset: Dataset, every: timedelta, now: datetime) -> RestoreRun | None:
    """Start the dataset's scheduled drill unless one is under way or finished within its
    period (re-checked under the dataset's lock, so two dispatchers start it once)."""
    with transaction.atomic():
        DatasetProtection.objects.select_for_update().filter(dataset=dataset).first()
        recent = RestoreRun.objects.filter(dataset=dataset, is_drill=True).filter(
            Q(status__in=ACTIVE_RUN_STATES) | Q(finished_at__gt=now - every)
        )
        if recent.exists():
            return None
        return drill_start(actor=None, dataset=dataset, now=now)


def _scratch_sweep() -> int:
    """Remove scratch directories of drills that are not pending or running (left by a
    worker that died mid-drill and a drill that was failed by recovery instead)."""
    root = scratch_root()
    if not root.is_dir():
        return 0
    found: dict[uuid.UUID, Path] = {}
    for child in root.iterdir():
        parsed = parse_public_id(child.name)
        if parsed is not None and child.is_dir() and str(parsed) == child.name:
            found[parsed] = child
    if not found:
        return 0
    active = set(
        RestoreRun.objects.unscoped_for_system_task()
        .filter(public_id__in=list(found), status__in=ACTIVE_RUN_STATES)
        .values_list("public_id", flat=True)
    )
    removed = 0
    for public_id, path in found.items():
        if public_id not in active:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def drills_dispatch(now: datetime | None = None) -> list[RestoreRun]:
    """Daily: start a drill for every dataset whose policy drills on a schedule and whose last
    finished drill (succeeded or not) is older than the policy's period, or that was never
    drilled but has a complete snapshot; raise drill_overdue for datasets without a successful
    drill for the period plus a week. Deciding costs the same few queries however many
    datasets; each drill started costs its own writes."""
    now = now or timezone.now()
    candidates = (
        Dataset.objects.unscoped_for_system_task()
        .filter(
            lifecycle_state__in=DRILLABLE_STATES,
            protection__policy__drill_every__isnull=False,
            protection__key_destroyed_at__isnull=True,
        )
        .filter(Exists(Snapshot.objects.filter(dataset=OuterRef("pk"), forgotten_at__isnull=True)))
        .order_by("pk")
    )
    facts = drill_facts(candidates.select_related("organization", "client"))
    started = []
    for dataset, fact in facts.values():
        overdue_since = _overdue_since(fact)
        if overdue_since is not None and overdue_since <= now:
            _overdue_raise(dataset, fact, now)
        due_at = drill_status_of(fact, now).due_at
        if fact.busy or fact.drill_every is None or due_at is None or due_at > now:
            continue
        try:
            drill = _dispatch_one(dataset, fact.drill_every, now)
        except (Conflict, ValidationFailed) as exc:
            logger.info("no drill for dataset %s: %s", dataset.public_id, exc.message)
            continue
        if drill is not None:
            started.append(drill)
    _scratch_sweep()
    return started


def _overdue_raise(dataset: Dataset, fact: DrillFacts, now: datetime) -> None:
    good = fact.last_good
    since = (
        f"the last successful drill finished {good.finished_at:%Y-%m-%d %H:%M} UTC"
        if good is not None and good.finished_at is not None
        else "it has never passed a restore drill"
    )
    every = duration_words(fact.drill_every) if fact.drill_every is not None else "—"
    alert_raise(
        organization=dataset.organization,
        kind=AlertKind.DRILL_OVERDUE,
        incident_key=drill_incident_key("drill_overdue", dataset),
        title=f"Restore drill of {dataset.name} overdue",
        message=f"{dataset.name} should pass a restore drill every {every}; {since}.",
        severity=Severity.MEDIUM,
        dataset=dataset,
        now=now,
    )
