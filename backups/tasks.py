"""Thin Celery wrappers: load by id, call one service. Retries only for transient storage errors."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.conf import settings

from backups import services
from backups.services.drills import drills_dispatch
from backups.services.notifications import alert_deliveries_retry
from backups.services.posture import location_audit_by_id, posture_audit_all
from backups.services.repository_locks import PRUNE_LOCK_STALE_AFTER
from backups.services.selfbackup import self_backup_run_by_ids
from backups.services.sweep import assurance_sweep

# A restore (and a drill) may first wait for an archive retrieval, as long as the operator
# allows (AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS), and then has the five hours any restore gets.
RESTORE_SECONDS = 5 * 60 * 60 + int(settings.AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS * 60 * 60)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(services.TransientFailure, services.RunInProgress),
    retry_backoff=15,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=5 * 60 * 60,
    time_limit=5 * 60 * 60 + 300,
)
def backup_run_task(self: Any, run_id: str) -> None:
    final = self.request.retries >= self.max_retries
    services.backup_run_execute(run_id, final_attempt=final)


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=(services.TransientFailure, services.RunInProgress),
    retry_backoff=15,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=3,
    soft_time_limit=RESTORE_SECONDS,
    time_limit=RESTORE_SECONDS + 300,
)
def restore_run_task(self: Any, restore_id: str) -> None:
    final = self.request.retries >= self.max_retries
    services.restore_run_execute(restore_id, final_attempt=final)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=55)
def backups_dispatch_task() -> int:
    return len(services.backups_dispatch())


@shared_task(acks_late=True, soft_time_limit=50, time_limit=55)
def runs_recover_task() -> dict[str, int]:
    return services.runs_recover()


# The hard limit is also how long a dead prune's repository lock is honoured.
@shared_task(
    acks_late=True,
    soft_time_limit=3 * 60 * 60,
    time_limit=int(PRUNE_LOCK_STALE_AFTER.total_seconds()),
)
def retention_sweep_task() -> int:
    return len(services.retention_sweep())


# --- posture audits ---


@shared_task(acks_late=True, soft_time_limit=60 * 60, time_limit=60 * 60 + 120)
def posture_audit_all_task() -> int:
    return len(posture_audit_all())


@shared_task(acks_late=True, soft_time_limit=5 * 60, time_limit=5 * 60 + 30)
def location_audit_task(location_id: str) -> str | None:
    """Audit one S3 location (public id) now; an unreachable bucket is recorded, not retried."""
    audit = location_audit_by_id(location_id)
    return str(audit.public_id) if audit is not None else None


# --- alerts and reviews ---


@shared_task(acks_late=True, soft_time_limit=10 * 60, time_limit=10 * 60 + 30)
def assurance_sweep_task() -> dict[str, int]:
    report = assurance_sweep()
    return {"raised": report.raised, "cleared": report.cleared, "still_open": report.still_open}


@shared_task(acks_late=True, soft_time_limit=4 * 60, time_limit=4 * 60 + 30)
def alert_deliveries_retry_task() -> int:
    return alert_deliveries_retry()


# --- restore drills ---


@shared_task(acks_late=True, soft_time_limit=10 * 60, time_limit=10 * 60 + 30)
def drills_dispatch_task() -> int:
    return len(drills_dispatch())


# --- self backup ---


@shared_task(
    bind=True,
    acks_late=True,
    max_retries=3,
    soft_time_limit=2 * 60 * 60,
    time_limit=2 * 60 * 60 + 300,
)
def self_backup_task(self: Any, location_ids: list[str] | None = None) -> dict[str, Any]:
    """Back AgencyOps' own database up; targets that were unreachable are retried alone."""
    result = self_backup_run_by_ids(location_ids)
    if result.retry_location_ids and self.request.retries < self.max_retries:
        raise self.retry(
            kwargs={"location_ids": result.retry_location_ids},
            countdown=300 * 2**self.request.retries,
        )
    return result.as_dict()
