"""Recording access events: a transactional outbox drained into the chain by workers.

`access_event_record` is what requests and services call. It captures the event whole — its
id, time, actor, target, origin — as a `PendingAccessEvent` row in the caller's transaction, so
the event exists exactly when the recorded action committed (nothing for a rolled-back change),
and asks for a drain of the organization once that transaction commits.

`access_events_drain` is the worker's side: it locks the organization's chain head once,
appends every pending event of the organization in pending-id order and deletes their pending
rows, in one transaction — many events per commit instead of one. Drains coalesce twice: a
recorder enqueues one only if none is queued and not yet started (`AccessDrainRequest`), and a
drain that finds nothing pending returns at once.
An event is therefore appended once: a redelivered or duplicate drain finds its pending row
gone; a drain that dies rolls back and leaves the rows for the next one.

Nothing depends on a message arriving: when the broker refuses the drain request the recording
process drains at once, and the every-minute `access_events_drain_all` (beat) appends whatever
a lost message left pending.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from kernel.tenancy import organization_scope
from lifecycle.models import AccessDrainRequest, PendingAccessEvent
from lifecycle.services.access.log import (
    APPEND_BATCH,
    access_event_payload,
    chain_extend,
    chain_head_lock,
)

logger = logging.getLogger(__name__)


def _drain_requested(organization_id: int) -> None:
    """After the recording transaction commits: have a worker drain — unless a requested drain
    has not started yet — or drain here (inline setting, or a broker that refuses the message
    or a database that refuses the request: the pending row is safe either way). A commit
    callback may run wherever the transaction ended, so it names its organization's scope."""
    with organization_scope(organization_id):
        _drain_request(organization_id)


def _drain_request(organization_id: int) -> None:
    from lifecycle.tasks import access_events_drain_task

    if settings.AGENCYOPS_ACCESS_LOG_INLINE:
        access_events_drain(organization_id)
        return
    try:
        if AccessDrainRequest.objects.filter(organization_id=organization_id).exists():
            return  # a drain is queued and has not started: it will read this event too
        try:
            with transaction.atomic():
                AccessDrainRequest.objects.create(organization_id=organization_id)
        except IntegrityError:
            return  # another recorder asked a moment ago, after this event committed
        access_events_drain_task.delay(organization_id)
    except Exception:  # any failure to ask: append now rather than in a minute
        logger.warning(
            "access-log drain of organization %s not enqueued; draining synchronously",
            organization_id,
        )
        try:
            access_events_drain(organization_id)
        except Exception:  # the request has committed; the beat drain appends it within a minute
            logger.exception("access-log drain of organization %s failed", organization_id)


def access_event_record(**fields: Any) -> str:
    """Record an access event (see `access_event_payload` for the fields) in the caller's
    transaction: it is appended to the chain by a worker once that transaction commits, and
    never if it rolls back. Returns the event's public id."""
    payload = access_event_payload(**fields)
    organization_id = int(payload["organization_id"])
    PendingAccessEvent.objects.create(
        organization_id=organization_id, public_id=payload["public_id"], payload=payload
    )
    transaction.on_commit(partial(_drain_requested, organization_id))
    return str(payload["public_id"])


def _drain_batch(organization_id: int) -> tuple[int, int]:
    """One transaction: lock the head, append up to APPEND_BATCH pending events in pending-id
    order, delete their pending rows. Returns (pending rows taken, events appended)."""
    with transaction.atomic():
        head = chain_head_lock(organization_id)
        # Read under the lock: a drain that waited for it sees what the previous one deleted.
        pending = list(
            PendingAccessEvent.objects.filter(organization_id=organization_id)
            .order_by("id")
            .values_list("id", "payload")[:APPEND_BATCH]
        )
        if not pending:
            return 0, 0
        # Already-chained ones (an event also appended by the pre-outbox task) are skipped.
        appended = chain_extend(head, [payload for _, payload in pending])
        PendingAccessEvent.objects.filter(id__in=[pk for pk, _ in pending]).delete()
    return len(pending), len(appended)


def access_events_drain(organization_id: int) -> int:
    """Append every event pending for the organization to its chain; returns how many were
    appended. Idempotent and safe beside concurrent drains (the chain head's lock serializes
    them); returns after two queries when nothing is pending."""
    # Before reading: a recorder that still finds the request will be read below; one that
    # does not creates a new one and enqueues the next drain.
    AccessDrainRequest.objects.filter(organization_id=organization_id).delete()
    if not PendingAccessEvent.objects.filter(organization_id=organization_id).exists():
        return 0
    total = 0
    while True:
        taken, appended = _drain_batch(organization_id)
        total += appended
        if taken < APPEND_BATCH:  # caught up: later events bring their own drain request
            return total


def access_events_drain_all() -> dict[int, int]:
    """Drain every organization with pending events or an outstanding drain request (the
    beat's safety net for lost drain messages); returns the events appended per organization."""
    organization_ids = sorted(
        set(
            PendingAccessEvent.objects.order_by("organization_id")
            .values_list("organization_id", flat=True)
            .distinct()
        )
        | set(AccessDrainRequest.objects.values_list("organization_id", flat=True))
    )
    return {pk: access_events_drain(pk) for pk in organization_ids}
