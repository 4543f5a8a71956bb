"""Reference tools (rclone, restic) run against the same data and endpoint, when installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY


def vm_hwm_mb() -> float | None:
    """This process image's peak RSS (VmHWM). Unlike ru_maxrss it is not inherited across
    fork and exec, so a child started by a large benchmark process reports its own peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


# Both tools get the same parallelism as our engine.
TRANSFERS = 16
# No tool run may take longer than this (the whole benchmark must finish in ~10 minutes).
TIMEOUT = 180.0


@dataclass(frozen=True)
class ToolRun:
    seconds: float
    ok: bool
    detail: str = ""


def available(name: str) -> bool:
    return shutil.which(name) is not None


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    # A CA bundle meant for HTTPS endpoints makes the tools choke on the plain-HTTP endpoint.
    env.pop("AWS_CA_BUNDLE", None)
    env.update(extra)
    return env


def _timed(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> ToolRun:
    started = time.perf_counter()
    try:
        proc = subprocess.run(
            argv, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return ToolRun(time.perf_counter() - started, False, f"timed out after {TIMEOUT:.0f} s")
    seconds = time.perf_counter() - started
    detail = "" if proc.returncode == 0 else (proc.stderr or proc.stdout)[-400:]
    return ToolRun(seconds, proc.returncode == 0, detail)


class Rclone:
    """rclone configured through RCLONE_CONFIG_BENCH_* variables (no config file)."""

    def __init__(self, endpoint: str) -> None:
        self.env = _env(
            {
                "RCLONE_CONFIG_BENCH_TYPE": "s3",
                "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
                "RCLONE_CONFIG_BENCH_ENDPOINT": endpoint,
                "RCLONE_CONFIG_BENCH_REGION": TEST_REGION,
                "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
                "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
                "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
            }
        )

    def copy(self, source: str, destination: str) -> ToolRun:
        argv = ["rclone", "copy", source, destination, "--transfers", str(TRANSFERS)]
        return _timed([*argv, "--checkers", str(TRANSFERS)], self.env)

    def mkdir(self, bucket: str) -> ToolRun:
        return _timed(["rclone", "mkdir", f"bench:{bucket}"], self.env)


class Restic:
    def __init__(self, endpoint: str, bucket: str) -> None:
        self.env = _env(
            {
                "RESTIC_REPOSITORY": f"s3:{endpoint}/{bucket}",
                "RESTIC_PASSWORD": "bench-throwaway-password",
                "AWS_ACCESS_KEY_ID": TEST_ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": TEST_SECRET_ACCESS_KEY,
                "AWS_DEFAULT_REGION": TEST_REGION,
            }
        )

    def init(self) -> ToolRun:
        return _timed(["restic", "init"], self.env)

    def backup(self, source: Path) -> ToolRun:
        # Relative paths from inside the tree, like our engine's source prefix.
        argv = ["restic", "backup", ".", "--host", "bench", "-o", f"s3.connections={TRANSFERS}"]
        return _timed(argv, self.env, cwd=source)

    def restore(self, target: Path) -> ToolRun:
        argv = ["restic", "restore", "latest", "--target", str(target)]
        return _timed([*argv, "-o", f"s3.connections={TRANSFERS}"], self.env)
