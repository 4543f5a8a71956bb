"""Start moto's S3 server as a real subprocess so boto3 talks to it over loopback HTTP.

Tests and the benchmark use this instead of moto's in-process mocks: the in-process mocks patch
botocore and would hide connection pooling, retries and HTTP error translation, which are exactly
what the storage layer must get right.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

# Throwaway credentials: moto accepts any key pair unless auth checking is switched on.
TEST_ACCESS_KEY_ID = "testing"
TEST_SECRET_ACCESS_KEY = "testing"
TEST_REGION = "us-east-1"
# werkzeug's start-up line, which names the port it bound (the server is given port 0).
_RUNNING_ON = re.compile(rb"Running on http://127\.0\.0\.1:(\d+)")


def free_port() -> int:
    """Ask the kernel for a loopback port nobody is listening on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _moto_server_command() -> list[str]:
    # Prefer the console script next to the running interpreter (the project's virtualenv).
    script = Path(sys.executable).with_name("moto_server")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "moto.server"]


def _announced_port(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """The port the server bound, read from its stderr (" * Running on http://host:port");
    stderr is then drained for the server's life, so its request log never fills the pipe."""
    assert proc.stderr is not None
    stderr = proc.stderr
    announced: queue.Queue[int | None] = queue.Queue()

    def read() -> None:
        for line in stderr:
            found = _RUNNING_ON.search(line)
            if found:
                announced.put(int(found.group(1)))
        announced.put(None)  # exited without saying where it listens

    threading.Thread(target=read, name="moto-server-stderr", daemon=True).start()
    try:
        port = announced.get(timeout=timeout)
    except queue.Empty:
        raise RuntimeError(f"moto_server did not start within {timeout}s") from None
    if port is None:
        raise RuntimeError(f"moto_server exited early with status {proc.wait()}")
    return port


def _wait_until_answering(url: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited early with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):  # noqa: S310 - loopback
                return
        except urllib.error.HTTPError:
            return  # any HTTP answer means the server is up
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"moto_server did not answer on {url} within {timeout}s")


@contextlib.contextmanager
def moto_server(*, env: Mapping[str, str] | None = None, timeout: float = 30.0) -> Iterator[str]:
    """Run `moto_server` on a loopback port of its own; yield its endpoint URL; kill it
    afterwards. It binds port 0 and says which port it got: a port looked up beforehand could be
    taken by a parallel test process's server before this one binds it."""
    child_env = dict(os.environ)
    child_env.update(env or {})
    proc = subprocess.Popen(
        [*_moto_server_command(), "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env,
    )
    try:
        url = f"http://127.0.0.1:{_announced_port(proc, timeout)}"
        _wait_until_answering(url, proc, timeout)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """One moto server for the whole test session (buckets are per test, so tests stay apart)."""
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint_with_auth() -> Iterator[str]:
    """A moto server that checks credentials on every request, for wrong-credential tests."""
    with moto_server(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as url:
        yield url
