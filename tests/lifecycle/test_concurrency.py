"""Concurrent appenders never fork the chain: 8 producer threads record 1,000 events to one
organization (one transaction each, as requests would) while 8 worker threads run the drain
tasks those commits ask for — each thread its own database connection, as separate processes
would have. One unbroken chain, every event once."""

from __future__ import annotations

import queue
import threading
from typing import Any

import pytest
from django.db import connection, connections, transaction

from lifecycle import tasks
from lifecycle.models import AccessEvent, PendingAccessEvent
from lifecycle.services import access_event_record, access_log_verify
from tests.factories import OrganizationFactory

WORKERS = 8
PRODUCERS = 8
# PostgreSQL carries the acceptance figure; SQLite (one writer at a time) a smaller run of the
# same code path, so the suite stays quick without skipping the test.
TOTAL = 1000 if connection.vendor == "postgresql" else 240


@pytest.mark.django_db(transaction=True)
def test_concurrent_drains_make_one_unbroken_chain(settings: Any, monkeypatch: Any) -> None:
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False
    organization = OrganizationFactory(slug="busy")
    broker: queue.Queue[int | None] = queue.Queue()
    monkeypatch.setattr(tasks.access_events_drain_task, "delay", broker.put)
    start = threading.Barrier(WORKERS + PRODUCERS)
    errors: list[BaseException] = []
    appended: list[int] = []
    recorded: list[str] = []

    def producer(p: int) -> None:
        try:
            start.wait()
            for i in range(TOTAL // PRODUCERS):
                with transaction.atomic():
                    recorded.append(
                        access_event_record(
                            organization=organization, action="restore", details={"p": p, "i": i}
                        )
                    )
        except BaseException as exc:  # reported below; a thread cannot fail the test itself
            errors.append(exc)
        finally:
            connections.close_all()

    def worker() -> None:
        try:
            start.wait()
            while (organization_id := broker.get()) is not None:
                # executed as the worker executes it: traced, retried on transient errors
                result = tasks.access_events_drain_task.apply(args=(organization_id,), throw=True)
                appended.append(result.get())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    producers = [threading.Thread(target=producer, args=(p,)) for p in range(PRODUCERS)]
    workers = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in producers + workers:
        thread.start()
    for thread in producers:
        thread.join(timeout=300)
    for _ in workers:
        broker.put(None)  # after every drain request: stop
    for thread in workers:
        thread.join(timeout=300)
    assert not errors, errors
    assert len(recorded) == TOTAL
    assert sum(appended) == TOTAL  # every event appended once, by some drain
    assert len(appended) <= TOTAL  # at most one drain per commit: requests coalesce
    chained = AccessEvent.objects.filter(organization=organization).order_by("seq")
    assert list(chained.values_list("seq", flat=True)) == list(range(1, TOTAL + 1))
    assert {str(pk) for pk in chained.values_list("public_id", flat=True)} == set(recorded)
    assert not PendingAccessEvent.objects.exists()
    report = access_log_verify(organization)
    assert report.ok, report
    assert report.events == TOTAL
