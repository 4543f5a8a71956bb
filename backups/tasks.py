"""Thin Celery wrappers: load by id, call one service. Retries only for transient storage errors."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from backups import services


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
    soft_time_limit=5 * 60 * 60,
    time_limit=5 * 60 * 60 + 300,
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


@shared_task(acks_late=True, soft_time_limit=3 * 60 * 60, time_limit=3 * 60 * 60 + 300)
def retention_sweep_task() -> int:
    return len(services.retention_sweep())


# --- posture audits ---

# --- alerts and reviews ---

# --- restore drills ---
