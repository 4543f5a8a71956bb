"""Thin Celery wrappers: the access log's worker path and the storage-log import."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from django.db import OperationalError

from lifecycle import services


@shared_task(
    acks_late=True,
    # A locked SQLite file or a PostgreSQL deadlock/serialization failure clears on retry.
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=50,
    time_limit=60,
)
def access_events_drain_task(organization_id: int) -> int:
    """Append the organization's pending access events to its chain (idempotent: a redelivered
    or duplicate drain finds nothing pending and returns at once)."""
    return services.access_events_drain(organization_id)


@shared_task(
    acks_late=True,
    # A locked SQLite file or a PostgreSQL deadlock/serialization failure clears on retry.
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=50,
    time_limit=55,
)
def access_events_drain_all_task() -> int:
    """The beat's safety net: drain every organization a lost drain message left pending."""
    return sum(services.access_events_drain_all().values())


@shared_task(
    acks_late=True,
    # A locked SQLite file or a PostgreSQL deadlock/serialization failure clears on retry.
    autoretry_for=(OperationalError,),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=50,
    time_limit=60,
)
def access_event_append_task(payload: dict[str, Any]) -> int:
    """Append one event enqueued whole by the pre-outbox recorder (idempotent by its public id).
    Kept so messages already queued at the upgrade are still appended; nothing sends it now."""
    return len(services.access_events_append([payload]))


@shared_task(acks_late=True, soft_time_limit=50 * 60, time_limit=55 * 60)
def storage_logs_ingest_task() -> int:
    return sum(r.events for r in services.storage_logs_ingest_all().values())


@shared_task(
    acks_late=True,
    # Endpoint unreachable or a backup of the scope still running: try again later.
    autoretry_for=(services.DeletionDeferred, OperationalError),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=20,
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 300,
)
def deletion_request_execute_task(request_public_id: str) -> str:
    """Execute an approved deletion (idempotent: finished or held requests return at once)."""
    return str(services.deletion_request_execute(request_public_id).state)


@shared_task(acks_late=True, soft_time_limit=50, time_limit=55)
def deletions_recover_task() -> int:
    return len(services.deletions_recover())


@shared_task(acks_late=True, soft_time_limit=3600, time_limit=3700)
def deletion_requests_draft_due_task() -> int:
    """Draft a request for every obligation that came due and notify the admins."""
    return len(services.deletion_requests_draft_due())


@shared_task(acks_late=True, soft_time_limit=6 * 3600, time_limit=6 * 3600 + 300)
def deletion_follow_ups_task() -> int:
    return len(services.deletion_follow_ups_run())
