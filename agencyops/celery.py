"""The Celery app and every periodic job, each with the reason it runs when it does."""

from __future__ import annotations

import os

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agencyops.settings")

app = Celery("agencyops")
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
    # --- alerts and reviews ---
    # --- restore drills ---
}
