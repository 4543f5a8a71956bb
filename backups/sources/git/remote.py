"""Reaching a remote: the environment git runs with (built from nothing), the credentials
(askpass, key file) in a private directory, the pinned address, and what its errors mean."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult

from backups.sources import process
from backups.sources.git.checks import (
    _REMOTE_SCHEMES,
    _check_url,
    _is_ip,
)
from backups.sources.process import (
    SourceCredentialsRefused,
    SourceError,
    SourceMissing,
    SourceUnreachable,
)

# stderr fragments (lower case) that say what went wrong, in the order they are tried.
_REFUSED = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "permission denied (publickey",
    "permission denied, please try again",
    "invalid username or password",
    "returned error: 401",
    "returned error: 403",
)
_MISSING = (
    "repository not found",  # GitHub, Bitbucket
    "' not found",  # git over HTTP: repository 'https://…/x.git/' not found
    "does not appear to be a git repository",  # ssh, file://
    "repository not exported",  # git daemon, which says no more of a missing one
    "no such repository",
    "project you were looking for could not be found",  # GitLab
)
_UNREACHABLE = (
    "could not resolve host",
    "failed to connect",
    "couldn't connect",
    "connection refused",
    "connection timed out",
    "connection reset",
    "timed out",
    "operation too slow",
    "unable to connect",
    "unable to look up",
    "network is unreachable",
    "no route to host",
    "name or service not known",
    "temporary failure in name resolution",
    "ssh: connect to host",
)


@dataclass(frozen=True)
class GitRemote:
    url: str
    # None (anonymous), {"username", "token"} (HTTPS) or {"ssh_private_key"} (SSH).
    credentials: Mapping[str, str] | None = None
    # The address the caller resolved the host to and judged allowed; None for file://.
    pinned_address: str | None = None
    file_roots: tuple[Path, ...] = ()


# --- talking to a remote ------------------------------------------------------------------


@dataclass(frozen=True)
class _Connection:
    url: str  # what git is given: pinned for git://, resolved for file://
    scheme: str
    env: dict[str, str]
    secrets: tuple[str, ...]
    lfs_url: str | None
    home: Path  # the private directory: HOME, and the cwd of commands without a repository


@contextlib.contextmanager
def _connect(remote: GitRemote, *, scratch: Path) -> Iterator[_Connection]:
    """Check `remote`, then give the environment to reach it, its secret files in a private
    directory that is removed (with them) on leaving."""
    try:
        parts = _check_url(remote.url, schemes=_REMOTE_SCHEMES)
    except ValueError as error:
        raise SourceError(str(error)) from None
    scheme = parts.scheme
    credentials = dict(remote.credentials or {})
    token = credentials.get("token", "")
    key = credentials.get("ssh_private_key", "")
    _check_credentials(credentials, scheme=scheme)
    pinned = _check_pin(remote.pinned_address, parts)
    url = remote.url
    config: list[tuple[str, str]] = [
        # Give up on a server that sends under a byte a second for five minutes.
        ("http.lowSpeedLimit", "1"),
        ("http.lowSpeedTime", "300"),
    ]
    if scheme == "file":
        url = "file://" + _file_inside_roots(parts.path, remote.file_roots)
    elif pinned and scheme in ("http", "https"):
        port = parts.port or (443 if scheme == "https" else 80)
        address = f"[{pinned}]" if ":" in pinned else pinned
        config.append(("http.curloptResolve", f"{parts.hostname}:{port}:{address}"))
    elif pinned and scheme == "git":
        address = f"[{pinned}]" if ":" in pinned else pinned
        url = parts._replace(netloc=f"{address}:{parts.port or 9418}").geturl()
    lfs_url = _lfs_endpoint(url, scheme=scheme)
    if lfs_url:
        # Set here, above a repository's own .lfsconfig, which must not send us elsewhere.
        config.append(("lfs.url", lfs_url))
    with process.private_directory(scratch, prefix="git-") as home:
        extra = {}
        if token:
            askpass = process.secret_file(home, "askpass", _ASKPASS)
            askpass.chmod(0o700)
            extra["GIT_ASKPASS"] = str(askpass)
            extra["AGENCYOPS_GIT_USERNAME"] = credentials["username"]
            extra["AGENCYOPS_GIT_PASSWORD"] = token
        if scheme == "ssh":
            identity = ["-o", "IdentityFile=none"]
            if key:
                path = process.secret_file(home, "id_key", _normal_key(key))
                identity = ["-i", str(path)]
            extra["GIT_SSH_COMMAND"] = shlex.join(
                ["ssh", "-F", "/dev/null", *identity, *_ssh_options(home, pinned)]
            )
        env = _git_env(home=home, allow=(scheme,), config=config, extra=extra)
        secrets = tuple(s for s in (token, key, key.strip(), _normal_key(key)) if s)
        yield _Connection(url, scheme, env, secrets, lfs_url, home)


_ASKPASS = """#!/bin/sh
# git and git-lfs ask for the user name, then the password: both come from the environment
# git was started with, so no secret is ever written here or passed as an argument.
case "$1" in
[Uu]sername*) printf '%s\\n' "$AGENCYOPS_GIT_USERNAME" ;;
*) printf '%s\\n' "$AGENCYOPS_GIT_PASSWORD" ;;
esac
"""


def _normal_key(key: str) -> str:
    # ssh refuses a key whose last line has no newline, or with CRLF line ends.
    return key.replace("\r\n", "\n").strip() + "\n" if key else ""


def _ssh_options(home: Path, pinned: str | None) -> list[str]:
    options = [
        "IdentitiesOnly=yes",
        "IdentityAgent=none",
        "BatchMode=yes",
        "StrictHostKeyChecking=accept-new",
        f"UserKnownHostsFile={home / 'known_hosts'}",
        "ConnectTimeout=30",
        "ServerAliveInterval=30",
        "ServerAliveCountMax=4",
    ]
    if pinned:
        options.append(f"HostName={pinned}")
    return [part for option in options for part in ("-o", option)]


def _check_credentials(credentials: Mapping[str, str], *, scheme: str) -> None:
    if not credentials:
        return
    if set(credentials) == {"username", "token"}:
        if scheme not in ("http", "https"):
            raise SourceError(f"a token is sent only over HTTPS, not {scheme}")
        values = (credentials["username"], credentials["token"])
        if not all(values) or any(c in v for v in values for c in "\r\n\x00"):
            raise SourceError("the username and token must be one line each, not empty")
    elif set(credentials) == {"ssh_private_key"}:
        if scheme != "ssh":
            raise SourceError(f"an SSH key is used only over ssh://, not {scheme}")
        if "PRIVATE KEY-----" not in credentials["ssh_private_key"]:
            raise SourceError("the SSH key is not a PEM/OpenSSH private key")
    else:
        raise SourceError("credentials must be {username, token} or {ssh_private_key}")


def _check_pin(pinned_address: str | None, parts: SplitResult) -> str | None:
    if pinned_address is None:
        return None
    if parts.scheme == "file":
        raise SourceError("a file:// repository has no address to pin")
    try:
        pinned = str(ipaddress.ip_address(pinned_address))
    except ValueError:
        raise SourceError(f"pinned address {pinned_address!r} is not an IP address") from None
    host = parts.hostname or ""
    if _is_ip(host) and str(ipaddress.ip_address(host)) != pinned:
        raise SourceError(f"{parts.scheme}://{host}/… is not the pinned address {pinned}")
    return pinned


def _file_inside_roots(path: str, roots: Sequence[Path]) -> str:
    real = Path(os.path.realpath(path))
    for root in roots:
        if real.is_relative_to(os.path.realpath(root)):
            return str(real)
    raise SourceError(f"file://{path} is not inside a directory allowed for file:// sources")


def _lfs_endpoint(url: str, *, scheme: str) -> str | None:
    if scheme in ("http", "https"):
        base = url.rstrip("/")
        return f"{base}/info/lfs" if base.endswith(".git") else f"{base}.git/info/lfs"
    if scheme in ("ssh", "file"):
        return url
    return None  # git:// has no LFS; its derived https:// endpoint is a host nobody judged


def _git_env(
    *,
    home: Path,
    allow: Sequence[str],
    config: Sequence[tuple[str, str]] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    settings = [
        ("protocol.allow", "never"),
        *((f"protocol.{scheme}.allow", "always") for scheme in allow),
        ("core.hooksPath", "/dev/null"),
        ("credential.helper", ""),
        ("http.followRedirects", "false"),
        # Auto-gc in the foreground: nothing of ours outlives the command (or races a bundle).
        ("gc.autoDetach", "false"),
        ("init.defaultBranch", "main"),
        ("lfs.locksverify", "false"),
        # No ssh master connection left behind, its socket outside our private directory.
        ("lfs.ssh.automultiplex", "false"),
        *config,
    ]
    env = {
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": ":".join(allow),
        # Never climb out of our directory into a repository whose config would apply.
        "GIT_CEILING_DIRECTORIES": str(home.parent),
        "GIT_CONFIG_COUNT": str(len(settings)),
    }
    for number, (key, value) in enumerate(settings):
        env[f"GIT_CONFIG_KEY_{number}"] = key
        env[f"GIT_CONFIG_VALUE_{number}"] = value
    return process.base_env(home, {**env, **(extra or {})})


@contextlib.contextmanager
def _local_env(*, allow: Sequence[str] = ()) -> Iterator[dict[str, str]]:
    """The environment of a command that reads or writes only local repositories."""
    with process.private_directory(prefix="git-") as home:
        yield _git_env(home=home, allow=allow)


def _run_git(
    argv: Sequence[str],
    *,
    conn: _Connection,
    cwd: Path | None = None,
    timeout: float = process.DEFAULT_TIMEOUT,
    what: str = "git",
) -> bytes:
    """Run a git command against the remote; its failure is said as missing, refused or
    unreachable when git's words show which."""
    try:
        done = process.run(
            argv,
            env=conn.env,
            secrets=conn.secrets,
            cwd=cwd or conn.home,
            timeout=timeout,
            what=what,
        )
    except SourceUnreachable:
        raise
    except SourceError as error:
        said = process.scrub(str(error), conn.secrets)
        lowered = said.lower()
        if any(words in lowered for words in _REFUSED):
            raise SourceCredentialsRefused(
                f"{what}: the server refused the credentials (or asked for some): {said}"
            ) from None
        if any(words in lowered for words in _MISSING):
            raise SourceMissing(f"{what}: the repository was not found: {said}") from None
        if any(words in lowered for words in _UNREACHABLE):
            raise SourceUnreachable(f"{what}: the server could not be reached: {said}") from None
        raise SourceError(said) from None
    return done.stdout


def _ls_remote(conn: _Connection, *, timeout: float) -> dict[str, str]:
    argv = ["git", "ls-remote", "--", conn.url]
    listed = _run_git(argv, conn=conn, timeout=timeout, what="git ls-remote")
    pairs = (line.split("\t", 1) for line in listed.decode().splitlines() if "\t" in line)
    return {
        name: sha for sha, name in pairs if name.startswith("refs/") and not name.endswith("^{}")
    }
