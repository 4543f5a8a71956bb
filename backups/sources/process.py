"""Running another program for a tenant (git, pg_dump, mariadb-dump, …) without handing it
anything it should not have.

- Arguments are a list, never a shell line; user-supplied names go after `--` (or as an
  option's value that cannot be read as another option) and are validated at registration.
- Secrets never go on a command line (other users of the machine read `/proc/*/cmdline`):
  they reach the program through its environment or a file of mode 0600 in a private
  directory, removed when the program ends.
- The environment is built from nothing: PATH, a HOME of our own (no user configuration is
  read), C locale, and what the caller adds. The server's own credentials (AWS_*, PG*, …)
  are never inherited.
- An error message is the program's last lines of stderr with every secret replaced, so it
  can be shown to the tenant and stored on the run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

# A program that says nothing for this long is stuck (a server that accepted and went quiet).
DEFAULT_TIMEOUT = 6 * 3600
_STDERR_TAIL = 2000


class SourceError(Exception):
    """A source could not be read or written: a message fit for the tenant (no secret, no
    command line), kept on the run."""


class SourceMissing(SourceError):
    """The repository or database named does not exist there."""


class SourceCredentialsRefused(SourceError):
    """The source refused the credentials given."""


class SourceUnreachable(SourceError):
    """The host did not answer, or the egress policy does not allow it."""


def base_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for a child program: nothing of the server's own is inherited."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TZ": "UTC",
    }
    if extra:
        env.update(extra)
    return env


def scrub(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[secret]")
    return text


@contextlib.contextmanager
def private_directory(parent: Path | None = None, *, prefix: str = "agencyops-") -> Iterator[Path]:
    """A directory only this process's user can enter (0700), removed with its contents."""
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=prefix, dir=parent) as name:
        path = Path(name)
        path.chmod(0o700)
        yield path


def secret_file(directory: Path, name: str, content: str | bytes) -> Path:
    """Write a secret into `directory` (private) as a file of mode 0600, created so (never
    readable by others, not even for an instant)."""
    path = directory / name
    data = content.encode() if isinstance(content, str) else content
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    return path


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    secrets: Sequence[str] = (),
    cwd: Path | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "",
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` (a list: no shell) and return it finished; SourceError with the scrubbed end
    of its stderr when it fails or times out. `secrets` are values that must never appear in
    what is raised (they may appear in the program's own messages)."""
    for secret in secrets:
        if secret and any(secret in arg for arg in argv):
            # A programming error, and the one place it would leak: refuse before running.
            raise SourceError("refused to pass a secret on a command line")
    try:
        completed = subprocess.run(  # noqa: S603 - a list, never a shell; see the module doc
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=stdin if stdin is not None else subprocess.DEVNULL,
            stdout=stdout if stdout is not None else subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise SourceUnreachable(f"{what or argv[0]} took longer than {timeout:.0f} s") from None
    except FileNotFoundError:
        raise SourceError(f"{argv[0]} is not installed on the worker") from None
    if completed.returncode != 0:
        tail = completed.stderr.decode(errors="replace").strip()[-_STDERR_TAIL:]
        raise SourceError(scrub(f"{what or argv[0]} failed: {tail}", secrets))
    return completed
