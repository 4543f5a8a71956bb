"""Web server, Celery worker and beat as one unit: Ctrl-C (or any of them exiting) stops all."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from backups.services.selfbackup import self_backup_startup_warning


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat together (for `make run`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--addr", default="127.0.0.1:8000")
        parser.add_argument("--concurrency", type=int, default=2)

    def handle(self, *args: Any, **options: Any) -> None:
        # Before anything starts, so the operator sees it above the servers' own output.
        self_backup_startup_warning()
        python = sys.executable
        commands = {
            "web": [python, "manage.py", "runserver", options["addr"], "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "agencyops",
                "worker",
                "--loglevel=INFO",
                f"--concurrency={options['concurrency']}",
            ],
            "beat": [python, "-m", "celery", "-A", "agencyops", "beat", "--loglevel=INFO"],
        }
        processes = {name: subprocess.Popen(argv) for name, argv in commands.items()}  # noqa: S603
        stopping = False

        def stop(signum: int, frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.stdout.write(
            f"Serving http://{options['addr']} with a worker and beat. Ctrl-C stops all three."
        )
        exited = None
        while not stopping and exited is None:
            exited = next((n for n, p in processes.items() if p.poll() is not None), None)
            time.sleep(0.5)
        if exited:
            self.stderr.write(f"{exited} exited; stopping the others.")
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 20
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        if exited:
            raise SystemExit(1)
