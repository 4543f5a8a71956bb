"""A terminal progress bar for long commands (stderr, so --json output stays clean)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"


class ProgressBar:
    """Call it with (done, total) from any thread; redraws at most ten times a second."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._last < 0.1 and done < total:
                return
            self._last = now
            fraction = done / total if total else 1.0
            filled = int(self.width * fraction)
            rate = done / max(now - self.started, 1e-6)
            self.stream.write(
                f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{fraction:6.1%}  {_human(done)} / {_human(total)}  {_human(rate)}/s"
            )
            self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def human_bytes(n: int) -> str:
    return _human(n)
