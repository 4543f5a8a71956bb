"""Access-log benchmark section: events appended per second by the worker path, and the time to
verify a chain of 100,000 events.

`appends_per_second` (the goal) is the worker: APPEND_EVENTS events recorded through
`access_event_record` (pending rows, one transaction each, their drain messages lost) and then
appended by one drain task executed as a Celery worker executes it (`Task.apply`: traced,
autoretry; not a `celery worker` process — tests/lifecycle/integration covers that).
`recorded_and_appended` is end to end: PRODUCERS threads record APPEND_EVENTS events, one
transaction each as requests do, while WORKERS threads execute the drain tasks those commits
request (broker replaced by an in-process queue; every thread its own database connection);
the clock runs from the first record to the last event in the chain, so recording — the
requests' side, in one Python process here — is included.

`section_access_log(bench)` is the section function for bench.run's SECTIONS: it runs this
module as a child process (`python -m bench.access_log`) against a fresh SQLite database in a
temporary AGENCYOPS_VAR_DIR — never the developer's database; BENCH_ACCESS_LOG_DATABASE_URL
names a throwaway PostgreSQL database instead — and stores its figures in
`bench.sections["access_log"]`. Goals: >= 500 events/s appended, 100,000 verified in < 5 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any
from unittest import mock

APPEND_EVENTS = 3000
# Recording threads (as requests) and drain worker threads of the end-to-end run.
PRODUCERS = 4
WORKERS = 2
VERIFY_EVENTS = 100_000
GOAL_APPENDS_PER_SECOND = 500.0
GOAL_VERIFY_SECONDS = 5.0


def section_access_log(bench: Any) -> dict[str, Any]:
    """Run the measurements in a child process; record and return them."""
    with tempfile.TemporaryDirectory(prefix="bench-access-log-") as var_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        if os.environ.get("BENCH_ACCESS_LOG_DATABASE_URL"):  # migrated and filled: throwaway
            env["DATABASE_URL"] = os.environ["BENCH_ACCESS_LOG_DATABASE_URL"]
        env.update(AGENCYOPS_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="agencyops.settings")
        proc = subprocess.run(
            [sys.executable, "-m", "bench.access_log"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"access-log bench failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["goals"] = {
        "appends_per_second>=500": result["appends_per_second"] >= GOAL_APPENDS_PER_SECOND,
        "verify_100k_seconds<5": result["verify_seconds"] < GOAL_VERIFY_SECONDS,
    }
    if bench is not None:
        bench.sections["access_log"] = result
    return result


def _worker_path(organization: Any, producers: int, workers: int) -> dict[str, Any]:
    """`producers` threads record APPEND_EVENTS events (one transaction each, as requests do)
    while `workers` threads execute the drain tasks those commits request; the clock stops when
    the last event is in the chain."""
    import queue
    import threading

    from django.db import connections, transaction

    from lifecycle import tasks
    from lifecycle.models import AccessEvent, PendingAccessEvent
    from lifecycle.services import access_event_record

    broker: queue.Queue[int | None] = queue.Queue()
    start = threading.Barrier(producers + workers + 1)
    errors: list[BaseException] = []
    drained: list[int] = []

    def produce(p: int) -> None:
        try:
            start.wait()
            for i in range(APPEND_EVENTS // producers):
                with transaction.atomic():
                    access_event_record(
                        organization=organization, action="restore", details={"p": p, "i": i}
                    )
        except BaseException as exc:  # re-raised below
            errors.append(exc)
        finally:
            connections.close_all()

    def work() -> None:
        try:
            start.wait()
            while (organization_id := broker.get()) is not None:
                # as the worker executes a task: traced, retried on transient errors
                result = tasks.access_events_drain_task.apply(args=(organization_id,), throw=True)
                drained.append(result.get())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
    threads_w = [threading.Thread(target=work) for _ in range(workers)]
    with mock.patch.object(tasks.access_events_drain_task, "delay", broker.put):
        for thread in threads + threads_w:
            thread.start()
        start.wait()
        started = time.perf_counter()
        for thread in threads:
            thread.join()
        recorded = time.perf_counter() - started
        for _ in threads_w:
            broker.put(None)  # after every drain request: stop
        for thread in threads_w:
            thread.join()
        seconds = time.perf_counter() - started
    if errors:
        raise errors[0]
    chained = AccessEvent.objects.filter(organization=organization).count()
    if chained != APPEND_EVENTS or PendingAccessEvent.objects.exists():
        raise RuntimeError(f"{chained} of {APPEND_EVENTS} events appended")
    return {
        "producers": producers,
        "workers": workers,
        "record_seconds": round(recorded, 3),
        "seconds": round(seconds, 3),
        "drain_tasks": len(drained),
        "drain_tasks_that_appended": sum(1 for n in drained if n),
        "drained_by_tasks": sum(drained),
        "events_per_second": round(APPEND_EVENTS / seconds, 1),
    }


def _measure() -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from lifecycle import tasks
    from lifecycle.services import (
        access_event_payload,
        access_event_record,
        access_events_append,
        access_log_verify,
    )
    from tests.factories import OrganizationFactory

    call_command("migrate", verbosity=0)
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False
    worker_path = _worker_path(
        OrganizationFactory(slug="bench-append"), producers=PRODUCERS, workers=WORKERS
    )

    # The worker's own rate: a backlog of APPEND_EVENTS pending events, drained by one task.
    backlog = OrganizationFactory(slug="bench-backlog")
    with mock.patch.object(tasks.access_events_drain_task, "delay"):  # every message lost
        for i in range(APPEND_EVENTS):
            access_event_record(organization=backlog, action="restore", details={"i": i})
    started = time.perf_counter()
    tasks.access_events_drain_task.apply(args=(backlog.pk,), throw=True)
    drain_seconds = time.perf_counter() - started

    big = OrganizationFactory(slug="bench-verify")
    for start in range(0, VERIFY_EVENTS, 10_000):
        access_events_append(
            access_event_payload(
                organization=big, action="storage_access", details={"i": i, "key": f"k/{i}"}
            )
            for i in range(start, min(start + 10_000, VERIFY_EVENTS))
        )
    started = time.perf_counter()
    report = access_log_verify(big)
    verify_seconds = time.perf_counter() - started
    if not report.ok or report.events != VERIFY_EVENTS:
        raise RuntimeError(f"the benchmark chain does not verify: {report}")
    return {
        "database": connection.vendor,
        "append_events": APPEND_EVENTS,
        "append_seconds": round(drain_seconds, 3),
        "appends_per_second": round(APPEND_EVENTS / drain_seconds, 1),
        "recorded_and_appended": worker_path,
        "verify_events": VERIFY_EVENTS,
        "verify_seconds": round(verify_seconds, 3),
    }


if __name__ == "__main__":
    from kernel.tenancy import system_scope

    # The child is the operator's process, like a worker running the measured services.
    with system_scope():
        print(json.dumps(_measure()))
