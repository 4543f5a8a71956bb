"""Drill status: when each dataset was last drilled, whether a drill succeeded within its period,
and when the next scheduled one is due. Read only, a fixed number of queries however many
datasets; callers pass datasets they may see."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from backups.models import (
    ACTIVE_RUN_STATES,
    DEFAULT_DRILL_EVERY,
    RestoreRun,
    RunStatus,
    Snapshot,
)
from clients.models import Dataset

FINISHED_STATES = (RunStatus.SUCCEEDED, RunStatus.FAILED)


@dataclass(frozen=True)
class DrillStatus:
    """The last finished drill; whether one succeeded within the drill period (the policy's, or
    quarterly when the policy drills by hand only); when the next scheduled drill is due (None
    when the policy drills by hand only or nothing can be restored yet)."""

    last: RestoreRun | None
    within_period: bool
    due_at: datetime | None


@dataclass(frozen=True)
class DrillFacts:
    """What the status of one dataset's drills is computed from (also the dispatcher's input)."""

    last: RestoreRun | None
    last_good: RestoreRun | None
    first_snapshot_at: datetime | None
    drill_every: timedelta | None
    busy: bool  # a drill is pending or running


def _finished_drills() -> QuerySet[RestoreRun]:
    """The finished drills of the dataset of the outer query, the last first."""
    return RestoreRun.objects.filter(
        dataset=OuterRef("pk"), is_drill=True, status__in=FINISHED_STATES
    ).order_by("-finished_at", "-pk")


def _first_snapshot_at() -> Subquery:
    """When the dataset of the outer query took its first complete snapshot."""
    return Subquery(
        # The organization too, so the database walks the (organization, dataset, -taken_at)
        # index instead of sorting every snapshot of the dataset.
        Snapshot.objects.filter(
            organization_id=OuterRef("organization_id"),
            dataset=OuterRef("pk"),
            forgotten_at__isnull=True,
        )
        .order_by("taken_at")
        .values("taken_at")[:1]
    )


def _drills_by_pk(wanted: set[int]) -> dict[int, RestoreRun]:
    if not wanted:
        return {}
    return {
        d.pk: d
        for d in RestoreRun.objects.filter(pk__in=wanted).select_related(
            "snapshot", "snapshot__location", "requested_by", "reviewed_by"
        )
    }


def drill_facts(datasets: QuerySet[Dataset]) -> dict[int, tuple[Dataset, DrillFacts]]:
    """Two queries, whatever the number of datasets: the datasets annotated with their last
    (and last successful) finished drill, first snapshot, drill period and whether a drill is
    under way; then those drills."""
    finished = _finished_drills()
    rows = list(
        datasets.annotate(
            last_drill_id=Subquery(finished.values("pk")[:1]),
            last_good_drill_id=Subquery(
                finished.filter(status=RunStatus.SUCCEEDED).values("pk")[:1]
            ),
            first_snapshot_at=_first_snapshot_at(),
            drill_period=F("protection__policy__drill_every"),
            drill_busy=Exists(
                RestoreRun.objects.filter(
                    dataset=OuterRef("pk"), is_drill=True, status__in=ACTIVE_RUN_STATES
                )
            ),
        )
    )
    ids: dict[int, tuple[int | None, int | None]] = {
        d.pk: (getattr(d, "last_drill_id", None), getattr(d, "last_good_drill_id", None))
        for d in rows
    }
    drills = _drills_by_pk({pk for pair in ids.values() for pk in pair if pk is not None})
    result: dict[int, tuple[Dataset, DrillFacts]] = {}
    for dataset in rows:
        last_id, good_id = ids[dataset.pk]
        result[dataset.pk] = (
            dataset,
            DrillFacts(
                last=drills.get(last_id) if last_id else None,
                last_good=drills.get(good_id) if good_id else None,
                first_snapshot_at=getattr(dataset, "first_snapshot_at", None),
                drill_every=getattr(dataset, "drill_period", None),
                busy=bool(getattr(dataset, "drill_busy", False)),
            ),
        )
    return result


def _schedule(
    *,
    last_finished_at: datetime | None,
    good_finished_at: datetime | None,
    first_snapshot_at: datetime | None,
    drill_every: timedelta | None,
    now: datetime,
) -> tuple[bool, datetime | None]:
    """(a drill succeeded within the period, when the next scheduled drill is due)."""
    period = drill_every or DEFAULT_DRILL_EVERY
    within = bool(good_finished_at and now - good_finished_at <= period)
    due_at: datetime | None = None
    if drill_every is not None:
        if last_finished_at is not None:
            due_at = last_finished_at + drill_every
        else:
            # Never drilled: due since the dataset first had something to restore.
            due_at = first_snapshot_at
    return within, due_at


def drill_status_of(facts: DrillFacts, now: datetime) -> DrillStatus:
    within, due_at = _schedule(
        last_finished_at=facts.last.finished_at if facts.last is not None else None,
        good_finished_at=facts.last_good.finished_at if facts.last_good is not None else None,
        first_snapshot_at=facts.first_snapshot_at,
        drill_every=facts.drill_every,
        now=now,
    )
    return DrillStatus(last=facts.last, within_period=within, due_at=due_at)


def drill_status_many(
    datasets: Sequence[Dataset], *, now: datetime | None = None
) -> dict[int, DrillStatus]:
    """Drill status by dataset pk, in two queries however many datasets."""
    now = now or timezone.now()
    if not datasets:
        return {}
    facts = drill_facts(Dataset.objects.filter(pk__in=[d.pk for d in datasets]))
    return {pk: drill_status_of(f, now) for pk, (_, f) in facts.items()}


def drill_status(dataset: Dataset, *, now: datetime | None = None) -> DrillStatus:
    return drill_status_many([dataset], now=now)[dataset.pk]


@dataclass(frozen=True, slots=True)
class DrillRecord:
    """A finished drill as a report shows it, read as plain values: what it restored (the
    snapshot's time), how long it took against the RTO, the recovery point against the RPO,
    what it verified and who reviewed it (a username)."""

    public_id: uuid.UUID
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    snapshot_taken_at: datetime
    measured_duration: timedelta | None
    retrieval_duration: timedelta | None
    rto: timedelta | None
    rto_met: bool | None
    recovery_point_age: timedelta | None
    rpo_met: bool | None
    files_verified: int
    issues: list[Any]
    reviewed_by: str | None
    reviewed_at: datetime | None


_RECORD_FIELDS = (
    "public_id",
    "status",
    "started_at",
    "finished_at",
    "snapshot__taken_at",
    "measured_duration",
    "retrieval_duration",
    "rto",
    "rto_met",
    "recovery_point_age",
    "rpo_met",
    "files_verified",
    "issues",
    "reviewed_by__username",
    "reviewed_at",
)


@dataclass(frozen=True, slots=True)
class DrillSummary:
    """`DrillStatus` for reports over many datasets: the last drill as a `DrillRecord`."""

    last: DrillRecord | None
    within_period: bool
    due_at: datetime | None


def _last_drill_records(datasets: QuerySet[Dataset]) -> dict[int, DrillRecord]:
    """Each dataset's last finished drill as a `DrillRecord`, by dataset pk (one query)."""
    last_drills = datasets.annotate(last_drill_id=Subquery(_finished_drills().values("pk")[:1]))
    return {
        dataset_id: DrillRecord(*values)
        for dataset_id, *values in RestoreRun.objects.filter(
            pk__in=last_drills.values("last_drill_id")
        )
        .values_list("dataset_id", *_RECORD_FIELDS)
        .order_by()
    }


def drill_summary_many(
    datasets: QuerySet[Dataset], *, now: datetime | None = None
) -> dict[int, DrillSummary]:
    """What `drill_status_many` says of each dataset of the query, by pk, read as values
    instead of model instances (a thousand datasets would otherwise mean thousands of them):
    two queries however many datasets. Callers pass a query of datasets they may see."""
    now = now or timezone.now()
    finished = _finished_drills()
    facts = (
        datasets.annotate(
            last_finished_at=Subquery(finished.values("finished_at")[:1]),
            # The last successful drill only matters by when it finished: read that alone.
            good_finished_at=Subquery(
                finished.filter(status=RunStatus.SUCCEEDED).values("finished_at")[:1]
            ),
            # The first snapshot only matters until a drill finished (`_schedule`): not looked
            # for after.
            first_snapshot_at=Case(
                When(last_finished_at__isnull=False, then=Value(None)),
                default=_first_snapshot_at(),
                output_field=DateTimeField(),
            ),
            drill_period=F("protection__policy__drill_every"),
        )
        .values_list("pk", "good_finished_at", "first_snapshot_at", "drill_period")
        .order_by()
    )
    records = _last_drill_records(datasets)
    result: dict[int, DrillSummary] = {}
    for pk, good_at, first_snapshot_at, drill_every in facts:
        record = records.get(pk)
        within, due_at = _schedule(
            last_finished_at=record.finished_at if record is not None else None,
            good_finished_at=good_at,
            first_snapshot_at=first_snapshot_at,
            drill_every=drill_every,
            now=now,
        )
        result[pk] = DrillSummary(last=record, within_period=within, due_at=due_at)
    return result
