"""One appender process for tests/lifecycle/test_concurrency.py (run as
`python -m tests.lifecycle.appender ORGANIZATION_ID PROCESS COUNT WORKDIR`).

It records COUNT access events, one transaction each, the way requests do (a pending row and,
after commit, a drain request through `access_events_drain_task.delay`); each drain it is asked
for it runs at once in this process through the Celery task itself (`.apply()`: the worker's
code path, traced and retried on transient errors), so every process is also a worker
appending to the one chain. It starts when WORKDIR/go appears (after every process is ready)
and writes what it recorded and what each drain appended to WORKDIR/<PROCESS>.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from unittest import mock

START_TIMEOUT_SECONDS = 120


def main(argv: list[str]) -> int:
    organization_id, process, count, workdir = int(argv[0]), int(argv[1]), int(argv[2]), argv[3]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "agencyops.settings")
    import django

    django.setup()
    from django.db import connection, transaction

    from clients.models import Organization
    from lifecycle import tasks
    from lifecycle.services import access_event_record

    task = tasks.access_events_drain_task
    drains: list[int] = []
    errors: list[str] = []

    def drain_here(requested_id: int) -> None:
        try:
            drains.append(int(task.apply(args=(requested_id,), throw=True).get()))
        except BaseException:
            # The recorder would fall back to a synchronous drain and hide this: report it.
            errors.append(traceback.format_exc())
            raise

    organization = Organization.objects.get(pk=organization_id)
    connection.ensure_connection()
    folder = Path(workdir)
    (folder / f"{process}.ready").touch()
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not (folder / "go").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the test never said go")
        time.sleep(0.005)

    recorded: list[str] = []
    # The drain request goes to this process, not to a broker (as the tests' monkeypatch does).
    with mock.patch.object(task, "delay", drain_here):
        for i in range(count):
            with transaction.atomic():
                recorded.append(
                    access_event_record(
                        organization=organization,
                        action="restore",
                        details={"process": process, "i": i},
                    )
                )
    (folder / f"{process}.json").write_text(
        json.dumps({"pid": os.getpid(), "recorded": recorded, "drains": drains, "errors": errors})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
