"""The crash matrix's machinery: a chain of real workers killed at seeded random points.

- `Matrix` drives one operation's cases over a chain of `celery worker` processes (the worker
  that resumes case i is the one killed in case i+1): it measures the operation once
  uninterrupted, then for each case starts the work, waits until a worker has claimed it, sleeps
  a seeded random share of the measured duration and SIGKILLs the worker's process group. A new
  worker then takes over the way production would: on Redis the killed message comes back once
  its visibility timeout has passed; the filesystem broker has already dropped it, so the
  recovery task that beat runs every minute is sent as beat would.
- `slow_link` is a loopback TCP proxy that limits uploads and/or downloads (shared by every
  connection), so a backup or a restore lasts long enough to be interrupted midway.
- `TripwireProxy` is the fault proxy (tests/faultproxy.py) delaying every request, with a hook
  that runs after a request reached S3 and before its answer goes back: the moment a crash
  leaves storage changed and the caller unaware.
"""

from __future__ import annotations

import contextlib
import random
import re
import signal
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import redis
from django.conf import settings

from agencyops.celery import app
from tests.backups.integration.support import (
    VISIBILITY_TIMEOUT_SECONDS,
    Cluster,
    Process,
    _pump,
    _Throttle,
    uses_filesystem_broker,
)
from tests.faultproxy import FaultProxy, _Handler

# Kill points are drawn from [0, KILL_WINDOW x the measured duration] after the claim: most land
# midway, some after the work finished (a crash right after success must be harmless too).
KILL_WINDOW = 1.15


# --- sending tasks and reading worker logs ---


def send(cluster: Cluster, task: Any, *args: Any) -> str:
    """Publish `task` to the cluster's broker, as `.delay()` or beat would; returns its id."""
    with app.connection_for_write(transport_options=cluster.transport_options) as connection:
        return str(task.apply_async(args=args, connection=connection).id)


def succeeded(worker: Process, task_name: str) -> list[str]:
    """Ids of the `task_name` messages this worker logged as succeeded, in order."""
    pattern = re.compile(rf"Task {re.escape(task_name)}\[([0-9a-f-]+)\] succeeded")
    return pattern.findall(worker.output())


def _redis_unacked_delivered_at() -> float | None:
    """When the newest unacknowledged message was delivered (Redis clock), or None."""
    client = redis.Redis.from_url(str(settings.CELERY_BROKER_URL))
    try:
        newest = client.zrange("unacked_index", -1, -1, withscores=True)
        return float(newest[0][1]) if newest else None
    finally:
        client.close()


# --- the matrix ---


@dataclass
class Case:
    case: int
    delay_seconds: float  # after the claim
    mid_run: bool  # False: the work had finished when the worker died
    at_kill: str  # what the work had done when it died (progress, state)


@dataclass
class Matrix:
    """One operation's crash cases over a chain of workers (see the module docstring)."""

    cluster: Cluster
    operation: str
    worker: Process = field(init=False)
    duration: float = 0.0
    cases: list[Case] = field(default_factory=list)
    restarts: int = 0
    started_at: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.worker = self.cluster.start_worker(f"{self.operation}-worker-0")

    def measure(
        self, start: Callable[[], object], claimed: Callable[[], bool], done: Callable[[], bool]
    ) -> float:
        """Run the operation once, uninterrupted: seconds from its claim to its end."""
        start()
        self.cluster.wait_for(claimed, 120, f"the {self.operation} warm-up to be claimed")
        began = time.monotonic()
        self.cluster.wait_for(done, 300, f"the {self.operation} warm-up to finish")
        self.duration = time.monotonic() - began
        return self.duration

    def kill_at_random_point(
        self,
        case: int,
        start: Callable[[], object],
        claimed: Callable[[], bool],
        *,
        while_running: Callable[[], object] | None = None,
    ) -> float:
        """Start the work, wait until a worker claimed it (then call `while_running`), SIGKILL
        that worker a seeded random time after the claim. Returns that delay."""
        assert self.duration > 0, "measure() first"
        rng = random.Random(f"{self.operation}-{case}")
        delay = rng.uniform(0.0, KILL_WINDOW * self.duration)
        start()
        self.cluster.wait_for(claimed, 120, f"{self.operation} case {case} to be claimed")
        claimed_at = time.monotonic()
        if while_running is not None:
            while_running()
        time.sleep(max(0.0, claimed_at + delay - time.monotonic()))
        self.worker.kill()
        assert self.worker.popen.returncode == -signal.SIGKILL
        return delay

    def restart(self, recover: Callable[[], object] | None = None) -> Process:
        """A new worker takes over from the killed one.

        Redis: once the visibility timeout has passed since the killed worker's unacknowledged
        message was delivered, a starting worker puts it back on the queue and runs it again.
        Filesystem: the killed message is gone; `recover` sends what beat would (the recovery
        sweep), to the new worker.
        """
        if not uses_filesystem_broker():
            delivered = _redis_unacked_delivered_at()
            if delivered is not None:
                time.sleep(max(0.0, delivered + VISIBILITY_TIMEOUT_SECONDS + 0.3 - time.time()))
        self.restarts += 1
        self.worker = self.cluster.start_worker(f"{self.operation}-worker-{self.restarts}")
        if uses_filesystem_broker() and recover is not None:
            recover()
        return self.worker

    def record(self, case: int, delay: float, *, mid_run: bool, at_kill: str) -> None:
        self.cases.append(Case(case, round(delay, 3), mid_run, at_kill))

    def figures(self, **extra: Any) -> dict[str, Any]:
        mid = sum(1 for c in self.cases if c.mid_run)
        return {
            "cases": len(self.cases),
            "killed_mid_run": mid,
            "killed_after_completion": len(self.cases) - mid,
            "recovered_with_invariants_held": len(self.cases),
            "uninterrupted_seconds": round(self.duration, 2),
            "total_seconds": round(time.monotonic() - self.started_at, 1),
            "broker": "filesystem" if uses_filesystem_broker() else "redis",
            "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
            "kills": [vars(c) for c in self.cases],
            **extra,
        }


# --- a slow link ---


class _LinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, upstream: tuple[str, int], up: _Throttle | None, down: _Throttle | None
    ) -> None:
        self.upstream = upstream
        self.up = up
        self.down = down
        super().__init__(("127.0.0.1", 0), _LinkHandler)


class _LinkHandler(socketserver.BaseRequestHandler):
    server: _LinkServer

    def handle(self) -> None:
        try:
            upstream = socket.create_connection(self.server.upstream, timeout=10)
        except OSError:
            return
        upstream.settimeout(None)
        with upstream:
            downloads = threading.Thread(
                target=_pump, args=(upstream, self.request, self.server.down), daemon=True
            )
            downloads.start()
            _pump(self.request, upstream, self.server.up)
            downloads.join(timeout=10)


@contextlib.contextmanager
def slow_link(
    upstream_url: str,
    *,
    upload_bytes_per_second: int | None = None,
    download_bytes_per_second: int | None = None,
) -> Iterator[str]:
    """Yield the URL of a proxy to `upstream_url` carrying each direction at the given rate
    (None: full speed), shared by every connection."""
    parsed = urlsplit(upstream_url)
    assert parsed.hostname is not None
    assert parsed.port is not None
    server = _LinkServer(
        (parsed.hostname, parsed.port),
        _Throttle(upload_bytes_per_second) if upload_bytes_per_second else None,
        _Throttle(download_bytes_per_second) if download_bytes_per_second else None,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- a slow S3 with a tripwire ---

Tripwire = Callable[[str, str, bytes], None]


class TripwireProxy(FaultProxy):
    """Every request forwarded, then answered `delay_seconds` late (rate 1.0 of "delay"; set
    `rate = 0` for full speed). `tripwire(method, path, body)`, when set, runs after S3 acted on
    a request and before the answer leaves: the window a crash makes visible."""

    def __init__(self, upstream: str, *, delay_seconds: float) -> None:
        super().__init__(upstream, rate=0.0, seed=0, kinds=("delay",), delay_seconds=delay_seconds)
        self.tripwire: Tripwire | None = None

    def __enter__(self) -> TripwireProxy:
        proxy = self

        class Handler(_TripwireHandler):
            owner = proxy

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self


class _TripwireHandler(_Handler):
    owner: TripwireProxy

    def handle(self) -> None:
        # The tripwire may have killed the client this answer was for.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        answer = super()._forward(body)
        tripwire = self.owner.tripwire
        if tripwire is not None:
            tripwire(self.command, self.path, body)
        return answer
