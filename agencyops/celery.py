"""The Celery app and every periodic job, each with the reason it runs when it does."""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.contrib.django.task import DjangoTask
from celery.schedules import crontab
from celery.signals import worker_ready

from kernel.tenancy import system_scope

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agencyops.settings")


class SystemScopedTask(DjangoTask):  # type: ignore[type-arg]  # generic in the stubs only
    """Every task is the operator's code: it runs in the system scope, and narrows to an
    organization through `Actor.system(organization)` and `visible_to` like any caller.
    (Celery's Django task underneath: `delay_on_commit`.)"""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with system_scope():
            return super().__call__(*args, **kwargs)


app = Celery("agencyops", task_cls=SystemScopedTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# The beat schedule lives here, in one place. Each later capability adds its line with a comment
# saying why it runs at that cadence.
app.conf.beat_schedule = {
    # Every minute: finds the due (dataset, target) pairs in one query and enqueues one backup
    # each. A minute is the finest policy slot (continuous = every 15 minutes) worth honouring.
    "backups-dispatch": {
        "task": "backups.tasks.backups_dispatch_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Every minute: runs whose worker died (heartbeat older than 30 s) or whose message was lost
    # are enqueued again; the claim lets exactly one worker resume them.
    "backups-recover": {
        "task": "backups.tasks.runs_recover_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Every minute: grants past their expiry lose their guardian rows (the actor already ignores
    # them at once; this makes the rows match), so an expired grant is gone the same minute.
    "grants-expire": {
        "task": "clients.tasks.grants_expire_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Every minute: append access events whose drain message was lost (a broker restart, a
    # worker killed before acking). Recording never depends on the message: the pending row
    # committed with the action, so it reaches its chain within a minute whatever happens.
    "access-events-drain": {
        "task": "lifecycle.tasks.access_events_drain_all_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Every 15 minutes: import newly delivered S3 server access logs. AWS delivers them with a
    # delay of minutes to hours; finished log objects are skipped, so a tick costs one listing.
    "storage-logs-ingest": {
        "task": "lifecycle.tasks.storage_logs_ingest_task",
        "schedule": 15 * 60.0,
        "options": {"expires": 14 * 60},
    },
    # Daily at 03:30 UTC, after the 02:00 daily backups: forget snapshots the policies no longer
    # keep and collect unreferenced chunks. Pairs under legal hold or mid-backup are skipped.
    "backups-retention": {
        "task": "backups.tasks.retention_sweep_task",
        "schedule": crontab(hour=3, minute=30),
    },
    # Every minute: deletions whose worker died (stale heartbeat) or whose message was lost are
    # enqueued again; the claim lets one worker resume them where they stopped.
    "deletions-recover": {
        "task": "lifecycle.tasks.deletions_recover_task",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Daily at 06:00 UTC, the start of the European working day: draft deletion requests for
    # obligations that came due and e-mail the admins, who approve them during the day.
    "deletion-requests-draft-due": {
        "task": "lifecycle.tasks.deletion_requests_draft_due_task",
        "schedule": crontab(hour=6, minute=0),
    },
    # Daily at 04:30 UTC, after retention: delete versions whose object lock has expired since
    # their deletion (the follow-up each lock-retained deletion scheduled).
    "deletion-follow-ups": {
        "task": "lifecycle.tasks.deletion_follow_ups_task",
        "schedule": crontab(hour=4, minute=30),
    },
    # --- posture audits ---
    # Daily at 05:00 UTC, after the night's backups, retention and deletion follow-ups: read
    # every S3 location's protection settings, so a setting switched off overnight (versioning
    # suspended, public access block removed) opens an alert before the working day starts.
    # Bucket settings change rarely and reading them costs about ten requests per bucket.
    "posture-audit-all": {
        "task": "backups.tasks.posture_audit_all_task",
        "schedule": crontab(hour=5, minute=0),
    },
    # --- alerts and reviews ---
    # Every 15 minutes: missed RPOs and due reviews. The shortest RPO is an hour-scale promise
    # and the issue asks for same-day alerts; a quarter hour finds a miss well within that for
    # a handful of reads per organization. Failed backups alert from their own run, not here.
    "assurance-sweep": {
        "task": "backups.tasks.assurance_sweep_task",
        "schedule": 15 * 60.0,
        "options": {"expires": 14 * 60},
    },
    # Every 2 minutes: notices whose first send failed (mail server or webhook down) are sent
    # again with backoff (2, 10, 30 minutes, 2 hours after the alert; five attempts at most).
    # One small read when nothing is pending.
    "alert-deliveries-retry": {
        "task": "backups.tasks.alert_deliveries_retry_task",
        "schedule": 2 * 60.0,
        "options": {"expires": 110},
    },
    # --- restore drills ---
    # Daily at 07:00 UTC: start the restore drills that came due (quarterly by default) and
    # raise drill_overdue where none passed for the period plus a week. After the night's
    # backups (02:00) and retention (03:30), so drills restore fresh snapshots and never race
    # pruning; early enough that a failed drill is in the admins' inbox as the day starts.
    "drills-dispatch": {
        "task": "backups.tasks.drills_dispatch_task",
        "schedule": crontab(hour=7, minute=0),
    },
    # --- self backup ---
    # Daily at 04:00 UTC: dump AgencyOps' own database into its encrypted self repository on
    # the chosen targets. After the 02:00 backups recorded their snapshots and the 03:30
    # retention pruned, so the dump holds the night's work; a lost database then costs at most
    # a day of metadata (never client data: that lives on the targets).
    "self-backup": {
        "task": "backups.tasks.self_backup_task",
        "schedule": crontab(hour=4, minute=0),
    },
}


@worker_ready.connect
def self_backup_warn_on_worker_ready(**kwargs: Any) -> None:
    """The worker runs the nightly self-backup: say at start, in its log, when that run could not
    write anywhere (several organizations and AGENCYOPS_SELF_BACKUP_LOCATIONS unset) or names a
    refused directory. One small query; a warning, never a reason not to start."""
    # Imported here: this module loads before Django's apps are ready.
    from backups.services.selfbackup import self_backup_startup_warning

    with system_scope():
        self_backup_startup_warning()
