"""Real Celery processes for the integration tests, and what they need around them.

- `Cluster` starts `celery -A agencyops worker` (solo pool) and `celery -A agencyops beat` as
  subprocesses of the test, each in its own process group with its log in a file, and stops
  them (SIGTERM, then SIGKILL) at teardown. They use the test's database (passed as
  DATABASE_URL), the test's master key, and the broker from settings: Redis when
  CELERY_BROKER_URL says so, else the filesystem broker in a fresh AGENCYOPS_VAR_DIR, so a
  developer's own worker never sees these tasks and stale messages never reach these workers.
- `ThrottledLink` is a loopback TCP proxy in front of the S3 server that carries uploads at a
  fixed rate: the slow link to an offsite target that makes a backup last long enough to be
  interrupted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import pytest
from celery.beat import PersistentScheduler
from django.conf import settings

from agencyops.celery import app

ROOT = Path(__file__).resolve().parents[3]
CELERY = Path(sys.executable).with_name("celery")
# Short, so Redis hands a killed worker's task to the next worker within seconds.
VISIBILITY_TIMEOUT_SECONDS = 3

_T = TypeVar("_T")


def database_url(settings_dict: Mapping[str, Any]) -> str:
    """DATABASE_URL naming the database this test process uses (the test database)."""
    engine = settings_dict["ENGINE"]
    options = dict(settings_dict.get("OPTIONS") or {})
    query = f"?{urlencode(options)}" if options else ""
    if engine == "django.db.backends.sqlite3":
        name = str(settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("A worker process cannot open an in-memory SQLite test database.")
        return f"sqlite:///{Path(name).resolve()}{query}"
    if engine == "django.db.backends.postgresql":
        user = quote(settings_dict.get("USER") or "", safe="")
        password = quote(settings_dict.get("PASSWORD") or "", safe="")
        auth = f"{user}{':' + password if password else ''}@" if user else ""
        host = settings_dict.get("HOST") or "localhost"
        port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
        return f"postgres://{auth}{host}{port}/{quote(settings_dict['NAME'], safe='')}{query}"
    raise RuntimeError(f"No DATABASE_URL form for {engine}.")


def uses_filesystem_broker() -> bool:
    return str(settings.CELERY_BROKER_URL).startswith("filesystem://")


def filesystem_broker_options(var_dir: Path) -> dict[str, Any]:
    """The folders agencyops/settings.py derives from AGENCYOPS_VAR_DIR for the filesystem
    broker, so this process can publish where the workers it started consume."""
    broker = var_dir / "broker"
    for sub in ("queue", "processed"):
        (broker / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(broker / "queue"),
        "data_folder_out": str(broker / "queue"),
        "processed_folder": str(broker / "processed"),
        "store_processed": False,
    }


class Process:
    """One started celery process, its process group, and its log file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.log = log
        self._log_handle: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
            # Its own process group: a worker's pool children die with it, and we signal the
            # group by this pid only, never by name.
            start_new_session=True,
        )

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def received(self, task_name: str) -> list[str]:
        """Ids of the `task_name` messages this worker logged as received, in order."""
        pattern = re.compile(rf"Task {re.escape(task_name)}\[([0-9a-f-]+)\] received")
        return pattern.findall(self.output())

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole group, as a crashed machine or the OOM killer would."""
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self) -> None:
        if self.running:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_handle.close()


class Cluster:
    """Workers and beat for one test, sharing its database, master key and broker."""

    def __init__(self, workdir: Path, database: Mapping[str, Any], master_key: str) -> None:
        self.workdir = workdir
        self.var_dir = workdir / "var"
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[Process] = []
        self.transport_options = (
            filesystem_broker_options(self.var_dir) if uses_filesystem_broker() else {}
        )
        env = {k: v for k, v in os.environ.items() if k != "CELERY_TASK_ALWAYS_EAGER"}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "agencyops.settings",
                "DATABASE_URL": database_url(database),
                "AGENCYOPS_VAR_DIR": str(self.var_dir),
                "AGENCYOPS_MASTER_KEY": master_key,
                "AGENCYOPS_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT_SECONDS),
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.env = env

    # --- processes ---

    def _spawn(self, name: str, argv: list[str]) -> Process:
        process = Process(name, argv, self.env, self.workdir / f"{name}.log")
        self.processes.append(process)
        return process

    def start_worker(self, name: str) -> Process:
        """`celery worker` with the solo pool (one task at a time, in the main process), and
        wait until it says it is ready."""
        worker = self._spawn(
            name,
            [
                str(CELERY),
                "-A",
                "agencyops",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--hostname",
                f"{name}-{uuid.uuid4().hex[:8]}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
        )
        self.wait_for(lambda: " ready." in worker.output(), 60, f"{name} to start")
        return worker

    def start_beat(self) -> Process:
        return self._spawn("beat", [str(CELERY), "-A", "agencyops", "beat", "--loglevel=INFO"])

    def seed_beat_schedule(self, entry: str, *, last_run_ago: timedelta) -> None:
        """Write beat's schedule file as if `entry` had last run `last_run_ago`: beat started on
        it sends that task at once instead of a full interval later (a restarted beat)."""
        scheduler = PersistentScheduler(
            app=app, schedule_filename=str(self.var_dir / "celerybeat-schedule")
        )
        try:
            scheduler.schedule[entry].last_run_at = app.now() - last_run_ago
        finally:
            scheduler.close()

    def stop(self) -> None:
        # Ask every process to stop first, so their shutdowns overlap.
        for process in self.processes:
            if process.running:
                process.signal_group(signal.SIGTERM)
        for process in reversed(self.processes):
            process.stop()

    # --- broker ---

    def publish(self, task: Any, *args: Any) -> None:
        """Send a task to the workers' broker, as `.delay()` (or beat) would."""
        with app.connection_for_write(transport_options=self.transport_options) as connection:
            task.apply_async(args=args, connection=connection)

    def queued_tasks(self) -> list[tuple[str, str]]:
        """(task name, arguments) of every message waiting in the filesystem broker's queue."""
        folder = Path(self.transport_options["data_folder_in"])
        found = []
        for path in sorted(folder.glob("*.msg")):
            headers = json.loads(path.read_text())["headers"]
            found.append((headers["task"], headers["argsrepr"]))
        return found

    # --- waiting and reporting ---

    def logs(self) -> str:
        return "\n".join(
            f"\n----- {p.name} (exit {p.popen.poll()}), last lines of {p.log} -----\n{p.tail()}"
            for p in self.processes
        )

    def wait_for(self, probe: Callable[[], _T | None], timeout: float, what: str) -> _T:
        """Poll `probe` until it returns something truthy; fail with every log on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(f"Timed out after {timeout:.0f} s waiting for {what}.{self.logs()}")
            time.sleep(0.05)


# --- a slow link ---


class _Throttle:
    """Hands out send slots so that all connections together move `rate` bytes per second."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.lock = threading.Lock()
        self.free_at = 0.0

    def take(self, nbytes: int) -> None:
        with self.lock:
            now = time.monotonic()
            self.free_at = max(now, self.free_at) + nbytes / self.rate
            delay = self.free_at - now
        time.sleep(delay)


def _pump(source: socket.socket, sink: socket.socket, throttle: _Throttle | None) -> None:
    try:
        while data := source.recv(64 * 1024):
            if throttle is not None:
                throttle.take(len(data))
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class _LinkServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream: tuple[str, int], throttle: _Throttle) -> None:
        self.upstream = upstream
        self.throttle = throttle
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
                target=_pump, args=(upstream, self.request, None), daemon=True
            )
            downloads.start()
            _pump(self.request, upstream, self.server.throttle)
            downloads.join(timeout=10)


@contextlib.contextmanager
def throttled_link(upstream_url: str, *, bytes_per_second: int) -> Iterator[str]:
    """Yield the URL of a proxy to `upstream_url` whose uploads are limited to the given rate
    (shared by every connection); downloads pass at full speed."""
    parsed = urlsplit(upstream_url)
    assert parsed.hostname is not None
    assert parsed.port is not None
    server = _LinkServer((parsed.hostname, parsed.port), _Throttle(bytes_per_second))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --- files ---


def digest_files(root: Path) -> dict[str, str]:
    """sha256 of every file under `root` by relative path: compares big trees cheaply."""
    digests = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            sha = hashlib.sha256()
            with path.open("rb") as handle:
                while block := handle.read(1024 * 1024):
                    sha.update(block)
            digests[path.relative_to(root).as_posix()] = sha.hexdigest()
    return digests
