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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from backups import engine, signals
from backups.models import (
    ACTIVE_RUN_STATES,
    AlertKind,
    DatasetProtection,
    DrillScenario,
    RestoreRun,
    RunStatus,
    Severity,
    Snapshot,
)
from backups.services.alerts import alert_clear, alert_raise
from backups.services.drills.sources import drill_source_check, drill_source_prepare
from backups.services.policies import dataset_data_key, protection_get
from backups.services.restores import restored_copy_record
from backups.services.stores import repository_base, store_for_location
from backups.storage import StorageError
from clients.models import Dataset, LifecycleState
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.http import NO_ORIGIN, RequestOrigin
from kernel.tenancy import Actor

logger = logging.getLogger(__name__)

# Datasets whose data still exists; deleted or deletion-pending ones are never drilled.
DRILLABLE_STATES = (LifecycleState.ACTIVE, LifecycleState.COMPLETED, LifecycleState.ARCHIVED)
# A drill records at most this many per-file problems (and how many more there were).
MAX_FILE_ISSUES = 50
_HASH_BLOCK = 1024 * 1024
HEARTBEAT_SECONDS = 1.0


def scratch_root() -> Path:
    return Path(settings.AGENCYOPS_SCRATCH_DIR).absolute()


def duration_words(value: timedelta) -> str:
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
    scenario: str = DrillScenario.RANDOM,
    path_prefix: str = "",
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
    protection = protection_get(dataset)
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
    scratch = scratch_root() / str(drill_id)
    age = max(now - snapshot.taken_at, timedelta(0))
    drill = RestoreRun.objects.create(
        public_id=drill_id,
        organization=dataset.organization,
        dataset=dataset,
        snapshot=snapshot,
        destination_path=str(scratch),
        path_prefix=path_prefix.strip("/"),
        is_drill=True,
        scenario=scenario,
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
            "path_prefix": path_prefix.strip("/"),
            "scenario": scenario,
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
    files = verified = failed = 0
    prefix = drill.path_prefix.strip("/")
    problems: list[str] = []
    beat_at = time.monotonic()
    entries = engine.snapshot_files(
        store_for_location(snapshot.location),
        repository_base(snapshot.location, dataset),
        dataset_data_key(dataset),
        snapshot.manifest_id,
    )
    try:
        # Streamed: the file list is read a segment at a time, never held whole.
        for entry in entries:
            if time.monotonic() - beat_at >= HEARTBEAT_SECONDS:
                # Still running: a heartbeat keeps recovery from taking the drill for abandoned.
                RestoreRun.objects.filter(pk=drill.pk).update(heartbeat_at=timezone.now())
                beat_at = time.monotonic()
            if prefix and entry.path != prefix and not entry.path.startswith(prefix + "/"):
                continue  # a drill of one file (or folder) checks what it restored
            files += 1
            problem = _file_matches(scratch.joinpath(*entry.path.split("/")), entry)
            if problem is None:
                verified += 1
            else:
                failed += 1
                if len(problems) < MAX_FILE_ISSUES:
                    problems.append(problem)
    except (StorageError, engine.EngineError) as exc:
        problems.append(f"The manifest could not be read to verify the files: {exc}")
        return _Checked(files, verified, tuple(problems))
    if failed > MAX_FILE_ISSUES:
        problems.append(f"… and {failed - MAX_FILE_ISSUES} more files")
    return _Checked(files, verified, tuple(problems))


def _drill_record(
    drill: RestoreRun, restored: RestoreRun, checked: _Checked | None, *, ended_at: datetime
) -> RestoreRun:
    """Write the drill's result: verified files, measured time vs RTO, issues, final state.
    The time runs from the claim to the end of verification (`ended_at`): a verified copy. An
    archive retrieval inside it is recorded apart (`retrieval_duration`, set by the restore),
    and the RTO is compared with restore time plus retrieval time: a disaster waits for both."""
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
    retrieval = restored.retrieval_duration or timedelta(0)
    measured = max(finished - started - retrieval, timedelta(0))
    rto_met: bool | None = None
    if restored.rto is not None:
        rto_met = not failed and measured + retrieval <= restored.rto
        if not failed and not rto_met:
            issues.append(_slower_than_rto(measured, retrieval, restored.rto))
    if restored.rpo_met is False and restored.recovery_point_age is not None:
        rpo = duration_words(restored.rpo) if restored.rpo is not None else "—"
        issues.append(
            f"The restored snapshot was {duration_words(restored.recovery_point_age)} old, "
            f"beyond the RPO of {rpo}."
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


def _slower_than_rto(measured: timedelta, retrieval: timedelta, rto: timedelta) -> str:
    if not retrieval:
        return (
            f"The restore took {duration_words(measured)}, longer than the RTO of "
            f"{duration_words(rto)}."
        )
    return (
        f"The restore took {duration_words(measured)} after {duration_words(retrieval)} of "
        f"archive retrieval, {duration_words(measured + retrieval)} in all: longer than the "
        f"RTO of {duration_words(rto)}."
    )


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


def drill_incident_key(kind: str, dataset: Dataset) -> str:
    return f"{kind}:{dataset.public_id}"


def _drill_alerts(drill: RestoreRun) -> None:
    dataset = drill.dataset
    organization = dataset.organization
    now = drill.finished_at
    if drill.status == RunStatus.FAILED:
        alert_raise(
            organization=organization,
            kind=AlertKind.DRILL_FAILED,
            incident_key=drill_incident_key("drill_failed", dataset),
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
        incident_key=drill_incident_key("drill_failed", dataset),
        resolution=done,
        now=now,
    )
    alert_clear(
        organization=organization,
        incident_key=drill_incident_key("drill_overdue", dataset),
        resolution=done,
        now=now,
    )
    if drill.rto_met is False:
        alert_raise(
            organization=organization,
            kind=AlertKind.DRILL_SLOW,
            incident_key=drill_incident_key("drill_slow", dataset),
            title=f"Restore drill of {dataset.name} was slower than its RTO",
            message=next((i for i in drill.issues if "RTO" in i), "Slower than the RTO."),
            severity=Severity.MEDIUM,
            dataset=dataset,
            now=now,
        )
    else:
        alert_clear(
            organization=organization,
            incident_key=drill_incident_key("drill_slow", dataset),
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
    removal = "scratch directory removed by the drill"
    try:
        drill_source_prepare(drill)
        restored = restore_into_scratch()
        checked = None if restored.status == RunStatus.FAILED else _verify_scratch(drill, scratch)
        if checked is not None and not checked.issues:
            # A repository or a database: usable, not only intact (fsck and refs; row counts).
            source = drill_source_check(drill, scratch)
            if source is not None:
                checked = _Checked(checked.files, checked.verified, tuple(source.issues))
                removal = "; ".join(filter(None, [removal, source.removal]))
        verified_at = timezone.now()
    finally:
        removed = _scratch_remove(drill, scratch)
    # The scratch was a copy of client data too: tracked, with its removal, so a deletion
    # certificate can say that no drill left one behind (or that one did).
    restored_copy_record(
        drill,
        files=RestoreRun.objects.filter(pk=drill.pk).values_list("files", flat=True)[0],
        at=timezone.now(),
        removed=removal if removed else "",
    )
    # Recorded once the scratch is gone, so a finished drill never has one left behind.
    finished = _drill_record(drill, restored, checked, ended_at=verified_at)
    _drill_alerts(finished)
    return finished
