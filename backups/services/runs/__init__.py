"""Backup runs (backup.py) and what backup and restore runs share (work.py): claims,
heartbeats, progress, failures and recovery. Public names here."""

from backups.services.runs.backup import (
    backup_run_create,
    backup_run_execute,
    backup_run_request,
    backups_dispatch,
    due_schedules,
)
from backups.services.runs.work import (
    MAX_ATTEMPTS,
    RUN_CLAIM,
    RUN_ERRORS,
    TRANSIENT_ERRORS,
    RunInProgress,
    TransientFailure,
    _beat,
    _claim,
    _enqueue_backup,
    _enqueue_restore,
    _failed,
    _finish_failed,
    _with_progress,
    runs_recover,
)

__all__ = [
    "MAX_ATTEMPTS",
    "RUN_CLAIM",
    "RUN_ERRORS",
    "TRANSIENT_ERRORS",
    "RunInProgress",
    "TransientFailure",
    "_beat",
    "_claim",
    "_enqueue_backup",
    "_enqueue_restore",
    "_failed",
    "_finish_failed",
    "_with_progress",
    "backup_run_create",
    "backup_run_execute",
    "backup_run_request",
    "backups_dispatch",
    "due_schedules",
    "runs_recover",
]
