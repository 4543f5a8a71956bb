"""Restore drills: proof, on a schedule and by hand, that a dataset's backups come back.

A drill restores a complete snapshot of the dataset, picked at random, into a fresh scratch
directory; re-reads every restored file against the snapshot's manifest (size and sha256);
measures the time to a verified copy against the dataset's RTO and the snapshot's age against
its RPO; deletes the scratch directory whatever happened; and raises or clears the drill alerts.
The drill is a RestoreRun with `is_drill=True`, carried out by `restore_run_task` like any
restore (`restore_run_execute` hands drills to `drill_execute`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    DateTimeField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.utils import timezone

from backups import engine, signals
from backups.models import (
    ACTIVE_RUN_STATES,
    DEFAULT_DRILL_EVERY,
    AlertKind,
    DatasetProtection,
    RestoreRun,
    RunStatus,
    Severity,
    Snapshot,
)
from backups.selectors import drill_list
from backups.services.alerts import alert_clear, alert_raise
from backups.services.policies import dataset_data_key, protection_ensure
from backups.services.restores import restored_copy_record
from backups.services.stores import repository_base, store_for_location
from backups.storage import StorageError
from clients.models import Dataset, LifecycleState
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor, parse_public_id

logger = logging.getLogger(__name__)

FINISHED_STATES = (RunStatus.SUCCEEDED, RunStatus.FAILED)
# Datasets whose data still exists; deleted or deletion-pending ones are never drilled.
DRILLABLE_STATES = (LifecycleState.ACTIVE, LifecycleState.COMPLETED, LifecycleState.ARCHIVED)
# The drill_overdue alert waits this long past the drill period: a week to fix a failed drill.
OVERDUE_GRACE = timedelta(days=7)
# A drill records at most this many per-file problems (and how many more there were).
MAX_FILE_ISSUES = 50
_HASH_BLOCK = 1024 * 1024
HEARTBEAT_SECONDS = 1.0


def _scratch_root() -> Path:
    return Path(settings.AGENCYOPS_SCRATCH_DIR).absolute()


def _words(value: timedelta) -> str:
    """A duration for a person: seconds under a minute, else days, hours and minutes."""
    seconds = value.total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s"
    days, rest = divmod(int(seconds // 60), 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{minutes} min"]
    return " ".join(p for p in parts if p and p != "0 min")


# --- starting ---


def _drill_snapshot(dataset: Dataset, snapshot: Snapshot | None) -> Snapshot:
    if snapshot is not None:
        if snapshot.dataset_id != dataset.pk or snapshot.forgotten_at is not None:
            raise ValidationFailed(
                "The snapshot is not a complete snapshot of this dataset.",
                fields={"snapshot": "Pick a complete snapshot of this dataset."},
            )
        return snapshot
    candidates = list(
        Snapshot.objects.filter(dataset=dataset, forgotten_at__isnull=True).values_list(
            "pk", flat=True
        )
    )
    if not candidates:
        raise Conflict("The dataset has no complete snapshot to restore yet.")
    # Any snapshot may be the one a disaster needs: each drill proves a different one.
    chosen = secrets.SystemRandom().choice(candidates)
    return Snapshot.objects.select_related("location").get(pk=chosen)


@transaction.atomic
def drill_start(
    *,
    actor: Actor | None,
    dataset: Dataset,
    snapshot: Snapshot | None = None,
    enqueue: bool = True,
    now: datetime | None = None,
    origin: RequestOrigin = NO_ORIGIN,
) -> RestoreRun:
    """Start a restore drill of a dataset: by hand (owners and admins) or by the system
    (`actor=None`). One unfinished drill per dataset (409). The snapshot is picked at random
    among the complete ones unless given (it must be this dataset's, else 400). The drill
    restores into `AGENCYOPS_SCRATCH_DIR/<drill id>`; the RTO and RPO are copied from the dataset
    so the record keeps the promise it was measured against. Enqueued once the caller commits."""
    if actor is not None:
        if actor.organization_id != dataset.organization_id:
            raise NotFound()
        actor.require_admin("start restore drills")
    if dataset.lifecycle_state not in DRILLABLE_STATES:
        raise Conflict(f"The dataset is {dataset.get_lifecycle_state_display().lower()}.")
    protection = protection_ensure(dataset)
    # Drill starts of one dataset queue here (a row lock on PostgreSQL; SQLite's IMMEDIATE
    # transactions already serialize writers), so the check below cannot race.
    DatasetProtection.objects.select_for_update().filter(pk=protection.pk).first()
    if protection.key_destroyed_at is not None:
        raise Conflict("The dataset's key was destroyed: none of its snapshots can be restored.")
    if RestoreRun.objects.filter(
        dataset=dataset, is_drill=True, status__in=ACTIVE_RUN_STATES
    ).exists():
        raise Conflict("A restore drill of this dataset is already pending or running.")
    snapshot = _drill_snapshot(dataset, snapshot)
    now = now or timezone.now()
    drill_id = uuid.uuid4()
    scratch = _scratch_root() / str(drill_id)
    age = max(now - snapshot.taken_at, timedelta(0))
    drill = RestoreRun.objects.create(
        public_id=drill_id,
        organization=dataset.organization,
        dataset=dataset,
        snapshot=snapshot,
        destination_path=str(scratch),
        is_drill=True,
        requested_by=actor.user if actor is not None else None,
        rto=dataset.rto,
        rpo=dataset.rpo,
        recovery_point_age=age,
        rpo_met=age <= dataset.rpo,
    )
    signals.data_accessed.send(
        sender=RestoreRun,
        organization=dataset.organization,
        actor=actor,
        action="restore_drill",
        dataset=dataset,
        snapshot=snapshot,
        details={
            "restore": str(drill_id),
            "destination_location": None,
            "destination_path": str(scratch),
            "path_prefix": "",
        },
        origin=origin,
    )
    if enqueue:
        from backups.tasks import restore_run_task

        restore_run_task.delay_on_commit(str(drill_id))  # type: ignore[attr-defined]  # stubs lag
    return drill


# --- carrying out (called by restore_run_execute for drills) ---


@dataclass(frozen=True)
class _Checked:
    files: int
    verified: int
    issues: tuple[str, ...]


def _file_matches(path: Path, entry: engine.FileEntry) -> str | None:
    """None when the restored file has the manifest's size and sha256; else what is wrong."""
    if not path.is_file():
        return f"{entry.path}: missing after the restore"
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        return f"{entry.path}: unreadable after the restore ({exc.strerror or exc})"
    if size != entry.size:
        return f"{entry.path}: {size} bytes restored, the snapshot recorded {entry.size}"
    if not hmac.compare_digest(digest.hexdigest(), entry.sha256):
        return f"{entry.path}: sha256 differs from the snapshot's record"
    return None


def _verify_scratch(drill: RestoreRun, scratch: Path) -> _Checked:
    """Re-read every restored file from disk against the manifest: what landed is what was
    backed up (the engine checked the stream; this checks the copy a person would use)."""
    dataset = drill.dataset
    snapshot = Snapshot.objects.select_related("location").get(pk=drill.snapshot_id)
    try:
        manifest = engine.load_manifest(
            store_for_location(snapshot.location),
            repository_base(snapshot.location, dataset),
            dataset_data_key(dataset),
            snapshot.manifest_id,
        )
    except (StorageError, engine.EngineError) as exc:
        return _Checked(0, 0, (f"The manifest could not be read to verify the files: {exc}",))
    problems = []
    verified = 0
    beat_at = time.monotonic()
    for entry in manifest.files:
        if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:
            # Still running: a heartbeat keeps recovery from taking the drill for abandoned.
            RestoreRun.objects.filter(pk=drill.pk).update(heartbeat_at=timezone.now())
            beat_at = time.monotonic()
        problem = _file_matches(scratch.joinpath(*entry.path.split("/")), entry)
        if problem is None:
            verified += 1
        else:
            problems.append(problem)
    issues = problems[:MAX_FILE_ISSUES]
    if len(problems) > MAX_FILE_ISSUES:
        issues.append(f"… and {len(problems) - MAX_FILE_ISSUES} more files")
    return _Checked(len(manifest.files), verified, tuple(issues))


def _drill_record(
    drill: RestoreRun, restored: RestoreRun, checked: _Checked | None, *, ended_at: datetime
) -> RestoreRun:
    """Write the drill's result: verified files, measured time vs RTO, issues, final state.
    The time runs from the claim to the end of verification (`ended_at`): a verified copy."""
    started = restored.started_at or ended_at
    issues: list[str] = []
    if restored.status == RunStatus.FAILED:
        # The restore failed: the time so far, and the error, are the record.
        finished = restored.finished_at or ended_at
        issues.append(f"The restore failed: {restored.error or 'no reason given'}")
    else:
        finished = ended_at
    if checked is not None:
        issues.extend(checked.issues)
        if not checked.issues and checked.verified != checked.files:
            issues.append(f"{checked.files - checked.verified} files were not verified")
    failed = bool(issues)
    measured = max(finished - started, timedelta(0))
    rto_met: bool | None = None
    if restored.rto is not None:
        rto_met = not failed and measured <= restored.rto
        if not failed and not rto_met:
            issues.append(
                f"The restore took {_words(measured)}, longer than the RTO of "
                f"{_words(restored.rto)}."
            )
    if restored.rpo_met is False and restored.recovery_point_age is not None:
        rpo = _words(restored.rpo) if restored.rpo is not None else "—"
        issues.append(
            f"The restored snapshot was {_words(restored.recovery_point_age)} old, beyond the "
            f"RPO of {rpo}."
        )
    error = restored.error
    if failed and not error:
        error = "The restored files did not match the snapshot: " + "; ".join(issues[:3])
    RestoreRun.objects.filter(pk=drill.pk).update(
        status=RunStatus.FAILED if failed else RunStatus.SUCCEEDED,
        finished_at=finished,
        files_verified=checked.verified if checked is not None else 0,
        measured_duration=measured,
        rto_met=rto_met,
        issues=issues,
        error=error[:4000],
    )
    return RestoreRun.objects.select_related(
        "dataset", "dataset__organization", "dataset__client", "snapshot"
    ).get(pk=drill.pk)


def _scratch_remove(drill: RestoreRun, scratch: Path) -> bool:
    """Delete the drill's scratch directory; only ever a directory named by the drill's id.
    Whether it is gone."""
    if scratch.name != str(drill.public_id) or not scratch.is_absolute():
        logger.error("drill %s: refusing to delete unexpected path %s", drill.public_id, scratch)
        return False
    shutil.rmtree(scratch, ignore_errors=True)
    if scratch.exists():
        logger.error(
            "drill %s: scratch directory %s could not be removed", drill.public_id, scratch
        )
        return False
    return True


def _incident(kind: str, dataset: Dataset) -> str:
    return f"{kind}:{dataset.public_id}"


def _drill_alerts(drill: RestoreRun) -> None:
    dataset = drill.dataset
    organization = dataset.organization
    now = drill.finished_at
    if drill.status == RunStatus.FAILED:
        alert_raise(
            organization=organization,
            kind=AlertKind.DRILL_FAILED,
            incident_key=_incident("drill_failed", dataset),
            title=f"Restore drill of {dataset.name} failed",
            message="; ".join(drill.issues[:5]) or drill.error,
            severity=Severity.HIGH,
            dataset=dataset,
            now=now,
        )
        return
    done = f"Restore drill {drill.public_id} succeeded."
    alert_clear(
        organization=organization,
        incident_key=_incident("drill_failed", dataset),
        resolution=done,
        now=now,
    )
    alert_clear(
        organization=organization,
        incident_key=_incident("drill_overdue", dataset),
        resolution=done,
        now=now,
    )
    if drill.rto_met is False:
        alert_raise(
            organization=organization,
            kind=AlertKind.DRILL_SLOW,
            incident_key=_incident("drill_slow", dataset),
            title=f"Restore drill of {dataset.name} was slower than its RTO",
            message=next((i for i in drill.issues if "RTO" in i), "Slower than the RTO."),
            severity=Severity.MEDIUM,
            dataset=dataset,
            now=now,
        )
    else:
        alert_clear(
            organization=organization,
            incident_key=_incident("drill_slow", dataset),
            resolution=f"Restore drill {drill.public_id} restored within the RTO.",
            now=now,
        )


def drill_execute(drill: RestoreRun, restore_into_scratch: Callable[[], RestoreRun]) -> RestoreRun:
    """Carry out a claimed drill: restore (the normal restore path, into the scratch
    directory; it leaves a drill running), verify every file, record the measurements and the
    final state, delete the scratch directory (also when anything fails), then raise or clear
    the drill alerts. A transient storage error propagates for the task's retry, after the
    scratch directory is gone."""
    scratch = Path(drill.destination_path)
    try:
        restored = restore_into_scratch()
        checked = None if restored.status == RunStatus.FAILED else _verify_scratch(drill, scratch)
        verified_at = timezone.now()
    finally:
        removed = _scratch_remove(drill, scratch)
    # The scratch was a copy of client data too: tracked, with its removal, so a deletion
    # certificate can say that no drill left one behind (or that one did).
    restored_copy_record(
        drill,
        files=RestoreRun.objects.filter(pk=drill.pk).values_list("files", flat=True)[0],
        at=timezone.now(),
        removed="scratch directory removed by the drill" if removed else "",
    )
    # Recorded once the scratch is gone, so a finished drill never has one left behind.
    finished = _drill_record(drill, restored, checked, ended_at=verified_at)
    _drill_alerts(finished)
    return finished


# --- status and dispatch ---


@dataclass(frozen=True)
class DrillStatus:
    """The last finished drill; whether one succeeded within the drill period (the policy's, or
    quarterly when the policy drills by hand only); when the next scheduled drill is due (None
    when the policy drills by hand only or nothing can be restored yet)."""

    last: RestoreRun | None
    within_period: bool
    due_at: datetime | None


@dataclass(frozen=True)
class _Facts:
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


def _facts(datasets: QuerySet[Dataset]) -> dict[int, tuple[Dataset, _Facts]]:
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
    wanted = {pk for pair in ids.values() for pk in pair if pk is not None}
    drills = (
        {
            d.pk: d
            for d in RestoreRun.objects.filter(pk__in=wanted).select_related(
                "snapshot", "snapshot__location", "requested_by", "reviewed_by"
            )
        }
        if wanted
        else {}
    )
    result: dict[int, tuple[Dataset, _Facts]] = {}
    for dataset in rows:
        last_id, good_id = ids[dataset.pk]
        result[dataset.pk] = (
            dataset,
            _Facts(
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


def _status(facts: _Facts, now: datetime) -> DrillStatus:
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
    facts = _facts(Dataset.objects.filter(pk__in=[d.pk for d in datasets]))
    return {pk: _status(f, now) for pk, (_, f) in facts.items()}


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
    last_drills = datasets.annotate(last_drill_id=Subquery(finished.values("pk")[:1]))
    records = {
        dataset_id: DrillRecord(*values)
        for dataset_id, *values in RestoreRun.objects.filter(
            pk__in=last_drills.values("last_drill_id")
        )
        .values_list("dataset_id", *_RECORD_FIELDS)
        .order_by()
    }
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


def _overdue_since(facts: _Facts) -> datetime | None:
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
    root = _scratch_root()
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
    facts = _facts(candidates.select_related("organization", "client"))
    started = []
    for dataset, fact in facts.values():
        overdue_since = _overdue_since(fact)
        if overdue_since is not None and overdue_since <= now:
            _overdue_raise(dataset, fact, now)
        due_at = _status(fact, now).due_at
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


def _overdue_raise(dataset: Dataset, fact: _Facts, now: datetime) -> None:
    good = fact.last_good
    since = (
        f"the last successful drill finished {good.finished_at:%Y-%m-%d %H:%M} UTC"
        if good is not None and good.finished_at is not None
        else "it has never passed a restore drill"
    )
    every = _words(fact.drill_every) if fact.drill_every is not None else "—"
    alert_raise(
        organization=dataset.organization,
        kind=AlertKind.DRILL_OVERDUE,
        incident_key=_incident("drill_overdue", dataset),
        title=f"Restore drill of {dataset.name} overdue",
        message=f"{dataset.name} should pass a restore drill every {every}; {since}.",
        severity=Severity.MEDIUM,
        dataset=dataset,
        now=now,
    )


# --- review ---


REVIEW_NOTE_MAX = 4000


@transaction.atomic
def drill_review(
    *, actor: Actor, drill: RestoreRun, note: str, now: datetime | None = None
) -> RestoreRun:
    """An owner or admin records that they looked at a finished drill's result (a later review
    replaces an earlier one: the record says who looked last, when, and what they concluded)."""
    if drill.organization_id != actor.organization_id or not drill.is_drill:
        raise NotFound()
    actor.require_admin("review restore drills")
    if drill.status not in FINISHED_STATES:
        raise Conflict("The drill has not finished yet; review it once it has.")
    note = note.strip()
    if len(note) > REVIEW_NOTE_MAX:
        raise ValidationFailed(
            "The note is too long.", fields={"note": f"At most {REVIEW_NOTE_MAX} characters."}
        )
    drill.reviewed_by = actor.user
    drill.reviewed_at = now or timezone.now()
    drill.review_note = note
    drill.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    return drill_list(actor=actor).get(pk=drill.pk)


__all__ = [
    "DrillRecord",
    "DrillStatus",
    "DrillSummary",
    "drill_execute",
    "drill_review",
    "drill_start",
    "drill_status",
    "drill_status_many",
    "drill_summary_many",
    "drills_dispatch",
]
