"""Concurrent appenders never fork the chain: 8 separate OS processes append 1,000 events to one
organization's chain on PostgreSQL (the acceptance figure), and verification passes.

Each process (tests/lifecycle/appender.py) opens its own connection to this test's database —
its name reaches it as DATABASE_URL, as for the integration tests' Celery workers — records its
share of the events one transaction each, as requests do, and runs every drain it is asked for
through `lifecycle.tasks.access_events_drain_task` itself (`.apply()`, the worker's code path),
not through a broker: 8 workers contending for one chain head, with no broker or worker start-up
in the way. The test commits for real (`transaction=True`) so the processes see its rows.

On the embedded SQLite default the same 8 processes run a smaller total (one writer at a time
makes 1,000 slow without proving more); with DATABASE_URL pointing at PostgreSQL — as in CI — the
full 1,000 run. Nothing is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from lifecycle.models import AccessEvent, PendingAccessEvent
from lifecycle.services import access_log_verify
from tests.backups.integration.support import ROOT, database_url
from tests.factories import OrganizationFactory

PROCESSES = 8
TOTAL = 1000 if connection.vendor == "postgresql" else 240
PER_PROCESS = TOTAL // PROCESSES
TIMEOUT_SECONDS = 300


def _environment(workdir: Path, master_key: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # the appenders publish nothing: no broker of anyone else's is ever touched
        if k not in {"CELERY_TASK_ALWAYS_EAGER", "CELERY_BROKER_URL"}
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "agencyops.settings",
            "DATABASE_URL": database_url(connection.settings_dict),
            "AGENCYOPS_VAR_DIR": str(workdir / "var"),
            "AGENCYOPS_MASTER_KEY": master_key,
            "AGENCYOPS_ACCESS_LOG_INLINE": "false",  # the worker path
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


@pytest.mark.django_db(transaction=True)
def test_eight_processes_append_one_unbroken_chain(settings: Any, tmp_path: Path) -> None:
    organization = OrganizationFactory(slug="busy")
    workdir = tmp_path / "appenders"
    workdir.mkdir()
    env = _environment(tmp_path, settings.AGENCYOPS_MASTER_KEY)
    logs = [(workdir / f"{n}.log").open("wb") for n in range(PROCESSES)]
    processes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.lifecycle.appender",
                str(organization.pk),
                str(n),
                str(PER_PROCESS),
                str(workdir),
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # stopped below by its own pid, never by name
        )
        for n, log in enumerate(logs)
    ]

    def output() -> str:
        return "\n".join(
            f"--- appender {n} (exit {p.poll()}) ---\n{(workdir / f'{n}.log').read_text()}"
            for n, p in enumerate(processes)
        )

    try:
        # Every process has imported Django and connected before any records: they start together.
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while len(list(workdir.glob("*.ready"))) < PROCESSES:
            if any(p.poll() is not None for p in processes):
                pytest.fail(f"an appender exited before the start\n{output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"the appenders did not get ready\n{output()}")
            time.sleep(0.02)
        (workdir / "go").touch()
        exits = [p.wait(timeout=TIMEOUT_SECONDS) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        for log in logs:
            log.close()
    assert exits == [0] * PROCESSES, output()

    results = [json.loads((workdir / f"{n}.json").read_text()) for n in range(PROCESSES)]
    assert [r["errors"] for r in results] == [[]] * PROCESSES, output()
    assert len({r["pid"] for r in results}) == PROCESSES  # separate OS processes
    recorded = [event_id for r in results for event_id in r["recorded"]]
    assert len(recorded) == len(set(recorded)) == TOTAL
    drains = [n for r in results for n in r["drains"]]
    assert sum(drains) == TOTAL  # every event appended once, by some process's drain
    assert len(drains) <= TOTAL  # at most one drain per commit: requests coalesce
    # the work was shared: more than one process appended to the chain
    assert sum(1 for r in results if sum(r["drains"]) > 0) > 1, [r["drains"] for r in results]

    chained = AccessEvent.objects.filter(organization=organization).order_by("seq")
    assert list(chained.values_list("seq", flat=True)) == list(range(1, TOTAL + 1))
    assert {str(pk) for pk in chained.values_list("public_id", flat=True)} == set(recorded)
    # no event forked off or left behind; each process's events in the order it recorded them
    by_process: dict[int, list[int]] = defaultdict(list)
    for details in chained.values_list("details", flat=True):
        by_process[details["process"]].append(details["i"])
    assert by_process == {n: list(range(PER_PROCESS)) for n in range(PROCESSES)}
    assert not PendingAccessEvent.objects.exists()
    assert not AccessEvent.objects.exclude(organization=organization).exists()
    report = access_log_verify(organization)
    assert report.ok, report
    assert (report.events, report.head_seq) == (TOTAL, TOTAL)
