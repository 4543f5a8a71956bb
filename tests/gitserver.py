"""Real git servers on loopback for the tests, and repositories with known content.

- `git_daemon`: `git daemon` (git://, push enabled), the protocol without authentication.
- `git_http`: smart HTTP through `git http-backend`, behind HTTP Basic authentication, the
  way a hosting service answers: 401 with a challenge until the right user and token come.
  A path that starts with `/slow/` is served after a pause, so a test can watch the client's
  processes while a request is in flight.
- `make_repo`: branches, annotated and lightweight tags, a note, a ref outside heads/tags,
  commits with fixed dates; `commit_to` adds one later; `make_lfs_repo` one whose *.bin files
  are stored by Git LFS (pushed to a bare repository over file://).

The test side runs git with a configuration of its own too (no system or user file), so what
a developer has in ~/.gitconfig changes nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest

# How long a request under /slow/ waits before it is answered.
SLOW_SECONDS = 0.25
_STARTUP_SECONDS = 10.0
_DATE = 1_700_000_000
# An absolute path: the test side never looks git up in a PATH a test may have changed.
GIT = shutil.which("git") or "/usr/bin/git"


class GitDaemon(NamedTuple):
    base_url: str
    base_dir: Path


class GitHttp(NamedTuple):
    base_url: str
    base_dir: Path
    username: str
    token: str


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def git_env(home: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of the test side's own git commands: no user or system configuration,
    a fixed identity."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home or Path(tempfile.gettempdir())),
        "LC_ALL": "C.UTF-8",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "Test Author",
        "GIT_AUTHOR_EMAIL": "author@example.test",
        "GIT_COMMITTER_NAME": "Test Committer",
        "GIT_COMMITTER_EMAIL": "committer@example.test",
        # Fixed dates (tags and notes too): the same calls build the same objects.
        "GIT_AUTHOR_DATE": f"{_DATE} +0000",
        "GIT_COMMITTER_DATE": f"{_DATE} +0000",
    }
    env.update(extra or {})
    return env


def git(*args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None) -> str:
    """Run git on the test side; its stdout, or an assertion error with its stderr."""
    done = subprocess.run(
        [GIT, *args], cwd=cwd, env=dict(env or git_env()), capture_output=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr.decode()}"
    return done.stdout.decode()


def refs_of(repo: Path) -> dict[str, str]:
    listed = git(f"--git-dir={repo}", "for-each-ref", "--format=%(objectname) %(refname)")
    return {name: sha for sha, name in (line.split(" ", 1) for line in listed.splitlines())}


def rev_list_all(repo: Path) -> list[str]:
    return sorted(git(f"--git-dir={repo}", "rev-list", "--all").split())


def _commit(work: Path, files: Mapping[str, bytes], message: str, when: int) -> str:
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(content)
    git("add", "--", *files, cwd=work)
    dated = git_env(
        extra={"GIT_AUTHOR_DATE": f"{when} +0000", "GIT_COMMITTER_DATE": f"{when} +0000"}
    )
    git("commit", "--quiet", "-m", message, cwd=work, env=dated)
    return git("rev-parse", "HEAD", cwd=work).strip()


def make_repo(path: Path) -> dict[str, str]:
    """A bare repository at `path` with known content; returns its refs.

    main: three commits (README.md, src/app.py, data.bin of every byte value); feature/login
    branches off the second; old-branch off the first (a test deletes it); v1.0 is an annotated
    tag on the second commit, v0.1 a lightweight one on the first; a note on main's tip; and
    refs/custom/keep, a ref no default refspec fetches; blob-tag and tree-tag, tags of objects
    that are not commits."""
    with tempfile.TemporaryDirectory(prefix="make-repo-") as name:
        work = Path(name)
        git("init", "--quiet", "--initial-branch=main", cwd=work)
        first = _commit(work, {"README.md": b"hello\n"}, "first", _DATE)
        second = _commit(work, {"src/app.py": b"print('app')\n"}, "second", _DATE + 60)
        third = _commit(work, {"data.bin": bytes(range(256))}, "third", _DATE + 120)
        git("checkout", "--quiet", "-b", "feature/login", second, cwd=work)
        _commit(work, {"src/login.py": b"login = True\n"}, "login", _DATE + 180)
        git("checkout", "--quiet", "-b", "old-branch", first, cwd=work)
        _commit(work, {"old.txt": b"old\n"}, "old", _DATE + 240)
        git("checkout", "--quiet", "main", cwd=work)
        git("tag", "-a", "v1.0", "-m", "release 1.0", second, cwd=work)
        git("tag", "v0.1", first, cwd=work)
        git("notes", "add", "-m", "reviewed", third, cwd=work)
        git("update-ref", "refs/custom/keep", first, cwd=work)
        # Tags need not point at commits: one at a blob, one (annotated) at a tree.
        git("tag", "blob-tag", f"{first}:README.md", cwd=work)
        git("tag", "-a", "tree-tag", "-m", "a tree", f"{second}^{{tree}}", cwd=work)
        git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
        git("push", "--quiet", "--mirror", str(path), cwd=work)
    return refs_of(path)


def commit_to(bare: Path, *, branch: str, filename: str, content: bytes) -> str:
    """A new commit on `branch` of a bare repository, adding or replacing one top-level file."""
    repo = f"--git-dir={bare}"
    blob = subprocess.run(
        [GIT, repo, "hash-object", "-w", "--stdin"],
        input=content,
        env=git_env(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    tree_lines = [
        line
        for line in git(repo, "ls-tree", f"refs/heads/{branch}").splitlines()
        if line.split("\t", 1)[1] != filename
    ]
    tree_lines.append(f"100644 blob {blob.strip()}\t{filename}")
    tree = subprocess.run(
        [GIT, repo, "mktree"],
        input="\n".join(tree_lines).encode() + b"\n",
        env=git_env(),
        capture_output=True,
        check=True,
    ).stdout.decode()
    commit = git(repo, "commit-tree", tree.strip(), "-p", f"refs/heads/{branch}", "-m", filename)
    git(repo, "update-ref", f"refs/heads/{branch}", commit.strip())
    return commit.strip()


def lfs_filters() -> list[str]:
    """`-c` options that turn the LFS filters on for one test-side command (a clone)."""
    return [
        "-c",
        "filter.lfs.process=git-lfs filter-process",
        "-c",
        "filter.lfs.required=true",
        "-c",
        "filter.lfs.clean=git-lfs clean -- %f",
        "-c",
        "filter.lfs.smudge=git-lfs smudge -- %f",
    ]


def make_lfs_repo(path: Path, *, files: Mapping[str, bytes]) -> dict[str, str]:
    """A bare repository at `path` whose `*.bin` files live in Git LFS, pushed there over
    file:// as a user would; returns each file's LFS object id (its sha256)."""
    with tempfile.TemporaryDirectory(prefix="make-lfs-") as name:
        work = Path(name)
        git("init", "--quiet", "--initial-branch=main", cwd=work)
        git("lfs", "install", "--local", cwd=work)
        git("lfs", "track", "*.bin", cwd=work)
        _commit(work, {".gitattributes": (work / ".gitattributes").read_bytes()}, "lfs", _DATE)
        _commit(work, {"README.md": b"lfs\n", **files}, "objects", _DATE + 60)
        git("init", "--quiet", "--bare", "--initial-branch=main", str(path))
        git("remote", "add", "origin", f"file://{path}", cwd=work)
        git("lfs", "push", "--all", "origin", cwd=work)
        git("push", "--quiet", "--mirror", "origin", cwd=work)
        ids = {}
        for file in files:
            pointer = git("cat-file", "blob", f"HEAD:{file}", cwd=work)
            ids[file] = pointer.split("oid sha256:", 1)[1].split()[0]
    return ids


def _wait_for_port(host: str, port: int, proc: subprocess.Popen[bytes] | None = None) -> bool:
    deadline = time.monotonic() + _STARTUP_SECONDS
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.02)
    return False


@contextlib.contextmanager
def running_git_daemon(base_dir: Path, *, host: str = "127.0.0.1") -> Iterator[GitDaemon]:
    """`git daemon` serving every repository under `base_dir`, pushes allowed, on a free
    port of `host`; stopped (its whole process group) on leaving."""
    base_dir.mkdir(parents=True, exist_ok=True)
    for _attempt in range(5):
        # Another process may take the port between asking and binding: then try another.
        port = free_port(host)
        proc = subprocess.Popen(
            [
                GIT,
                "daemon",
                "--reuseaddr",
                f"--base-path={base_dir}",
                "--export-all",
                "--enable=receive-pack",
                f"--listen={host}",
                f"--port={port}",
                str(base_dir),
            ],
            env=git_env(base_dir),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        if _wait_for_port(host, port, proc):
            break
        _stop(proc)
    else:
        pytest.fail("git daemon did not start")
    try:
        yield GitDaemon(f"git://{host}:{port}/", base_dir)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class _GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, root: Path, username: str, token: str):
        super().__init__(address, _GitHttpHandler)
        self.root = root
        expected = base64.b64encode(f"{username}:{token}".encode()).decode()
        self.authorization = f"Basic {expected}"
        self.username = username


class _GitHttpHandler(BaseHTTPRequestHandler):
    server: _GitHttpServer

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        if path.startswith("/slow/"):
            time.sleep(SLOW_SECONDS)
            path = path.removeprefix("/slow")
        given = self.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), self.server.authorization.encode()):
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self._body()
        env = git_env(
            self.server.root,
            {
                "GIT_PROJECT_ROOT": str(self.server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": self.server.username,
                "REMOTE_ADDR": self.client_address[0],
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
                "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                "HTTP_GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
            },
        )
        done = subprocess.run(
            [GIT, "http-backend"], input=body, env=env, capture_output=True, check=False
        )
        head, _, content = done.stdout.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode(errors="replace").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))


@contextlib.contextmanager
def running_git_http(
    base_dir: Path, *, host: str = "127.0.0.1", username: str = "deploy", token: str = ""
) -> Iterator[GitHttp]:
    """Smart HTTP over every repository under `base_dir`, for `username` with `token` (a
    random one unless given), on a free port of `host`."""
    base_dir.mkdir(parents=True, exist_ok=True)
    token = token or f"tok-{secrets.token_hex(16)}"
    server = _GitHttpServer((host, 0), root=base_dir, username=username, token=token)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="git-http", daemon=True
    )
    thread.start()
    try:
        yield GitHttp(f"http://{host}:{server.server_address[1]}/", base_dir, username, token)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def git_daemon(tmp_path: Path) -> Iterator[GitDaemon]:
    with running_git_daemon(tmp_path / "daemon-repos") as daemon:
        yield daemon


@pytest.fixture
def git_http(tmp_path: Path) -> Iterator[GitHttp]:
    with running_git_http(tmp_path / "http-repos") as server:
        yield server
