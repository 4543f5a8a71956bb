"""Git repositories as a backup source: mirror, stage, restore, push back.

A tenant names the repository, so its URL and everything the server sends back are hostile
input. What keeps that safe here:

- `git_repository_url` admits a URL only of the schemes we speak, with a path of plain
  characters (no option, no second URL, no `ext::`, no `..`); `GitRemote` URLs are checked
  again before every use. `git_repository_url` refuses `http`; a `GitRemote` takes it (a
  server on the caller's own network, and the tests): whether plain HTTP may be used is the
  caller's egress policy, not this module's.
- Git runs with an environment built from nothing (`process.base_env`): no system or user
  configuration, no credential helpers, no hooks, no prompt, no redirects, and only the
  remote's own transport allowed (`GIT_ALLOW_PROTOCOL`), so `ext::` and `file` cannot be
  smuggled in through a submodule-like URL or a redirect. Settings go through
  `GIT_CONFIG_COUNT`/`GIT_CONFIG_KEY_n`, never `-c`, so the command line carries no value of
  ours worth reading.
- A token reaches git through `GIT_ASKPASS`: a script without any secret in it that prints
  two variables of git's own environment. An SSH key is a 0600 file. Both live in a private
  directory removed when the command ends; neither is in an argument, a URL or a config file.
- The connection goes to the address the caller resolved and judged (`pinned_address`):
  curl's resolve list for HTTP(S), the address itself in a git:// URL, `HostName` for SSH.
- A file:// repository must resolve (symlinks included) inside one of `file_roots`, checked
  before git runs; git is then given the resolved path.

Limits, by design of the tools rather than of this module: Git LFS transfers are made by
git-lfs's own HTTP client, which resolves host names itself (no pinning for them), and the LFS
server's batch answer may send object downloads to other hosts (GitHub's storage, say); the
endpoint is forced to the remote's own (`lfs.url`), so a repository's `.lfsconfig` cannot
redirect it. git:// has no LFS. SSH host keys are accepted on first use, in a known_hosts file
that lives as long as one command.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from backups.sources import process
from backups.sources.git.checks import _BASE_SCHEMES, _check_repository_path, _check_url
from backups.sources.git.local import (
    _FSCK_TAIL,
    BUNDLE_NAME,
    LFS_OBJECTS,
    _copy_lfs_objects,
    _guess_head,
    _has_lfs_objects,
    _lfs_installed,
    _require_repository,
    _symbolic_head,
)
from backups.sources.git.remote import (
    GitRemote,
    _connect,
    _Connection,
    _local_env,
    _ls_remote,
    _run_git,
)
from backups.sources.process import SourceError

__all__ = [
    "BUNDLE_NAME",
    "LFS_OBJECTS",
    "GitRemote",
    "git_fsck",
    "git_ls_remote",
    "git_mirror_fetch",
    "git_push_mirror",
    "git_refs",
    "git_repository_url",
    "git_restore_bare",
    "git_stage",
]


def git_repository_url(base: str, path: str) -> str:
    """Join a location's endpoint and a dataset's repository path, refusing (ValueError) any
    input that could make git do something other than fetch that repository."""
    _check_repository_path(path)
    if "::" in base:
        raise ValueError(f"endpoint {base!r} names a git transport helper (::)")
    _check_url(base, schemes=_BASE_SCHEMES)
    url = f"{base.rstrip('/')}/{path}"
    _check_url(url, schemes=_BASE_SCHEMES)
    return url


def git_mirror_fetch(
    remote: GitRemote, *, mirror: Path, scratch: Path, timeout: float = process.DEFAULT_TIMEOUT
) -> None:
    """Bring `mirror` (a bare mirror under the worker's scratch) level with the remote: clone
    the first time, fetch with prune after, then LFS objects. The remote URL is set anew each
    time and never carries credentials."""
    mirror = mirror.absolute()
    with _connect(remote, scratch=scratch) as conn:
        if not mirror.exists() or not any(mirror.iterdir()):
            mirror.mkdir(parents=True, exist_ok=True)
            argv = ["git", "clone", "--mirror", "--quiet", "--", conn.url, str(mirror)]
            _run_git(argv, conn=conn, cwd=conn.home, timeout=timeout, what="git clone")
        else:
            _require_repository(mirror)
            git = ["git", f"--git-dir={mirror}"]
            # A mirror is re-pointed every time: the location may have moved, the pin changed.
            for key, value in (
                ("remote.origin.url", conn.url),
                ("remote.origin.fetch", "+refs/*:refs/*"),
                ("remote.origin.mirror", "true"),
            ):
                _run_git([*git, "config", "--replace-all", key, value], conn=conn)
            fetch = [*git, "fetch", "--prune", "--quiet", "origin"]
            _run_git(fetch, conn=conn, timeout=timeout, what="git fetch")
            _follow_remote_head(mirror, conn=conn, timeout=timeout)
        if conn.lfs_url and _lfs_installed() and git_refs(mirror):
            lfs = ["git", f"--git-dir={mirror}", "lfs", "fetch", "--all", "origin"]
            _run_git(lfs, conn=conn, cwd=mirror, timeout=timeout, what="git lfs fetch")


def git_stage(mirror: Path, *, out: Path) -> dict[str, object]:
    """Write what a snapshot keeps of a mirror into the empty directory `out`: one bundle of
    every ref (none for an empty repository) and the LFS objects, each checked against its
    name. Returns the facts a run records."""
    mirror = mirror.absolute()
    _require_repository(mirror)
    if not out.is_dir() or any(out.iterdir()):
        raise SourceError(f"{out} must be an empty directory")
    refs = git_refs(mirror)
    fsck_ok, fsck_text = git_fsck(mirror)
    bundle = out / BUNDLE_NAME
    if refs:
        with _local_env() as env:
            argv = ["git", f"--git-dir={mirror}", "bundle", "create", "--quiet", str(bundle)]
            process.run([*argv, "--all"], env=env, cwd=mirror, what="git bundle create")
    head = _symbolic_head(mirror)
    return {
        "refs": refs,
        "head": head if head in refs else None,
        "fsck": fsck_text,
        "fsck_ok": fsck_ok,
        "lfs_objects": _copy_lfs_objects(mirror / LFS_OBJECTS, out / LFS_OBJECTS),
        "bundle_bytes": bundle.stat().st_size if refs else 0,
    }


def git_restore_bare(staged: Path, *, dest: Path, head: str | None = None) -> dict[str, str]:
    """Rebuild a bare repository at `dest` (absent or empty) from a staged directory: exactly
    the bundle's refs, HEAD on `head` (the staged meta's) or on the branch the bundle's HEAD
    was, and the LFS objects. Returns the refs."""
    dest = dest.absolute()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise SourceError(f"{dest} already exists and is not empty")
    bundle = (staged / BUNDLE_NAME).absolute()
    with _local_env(allow=("file",)) as env:
        process.run(["git", "init", "--bare", "--quiet", "--", str(dest)], env=env)
        git = ["git", f"--git-dir={dest}"]
        refs: dict[str, str] = {}
        if bundle.exists():
            listed = process.run([*git, "bundle", "list-heads", str(bundle)], env=env, cwd=dest)
            heads: dict[str, str] = {}
            for line in listed.stdout.decode().splitlines():
                sha, _, name = line.partition(" ")
                heads[name] = sha
            fetch = [*git, "fetch", "--quiet", "--no-write-fetch-head", "--update-head-ok"]
            fetch += ["--", str(bundle), "+refs/*:refs/*"]
            process.run(fetch, env=env, cwd=dest, what="git fetch from the bundle")
            refs = git_refs(dest)
            expected = {name: sha for name, sha in heads.items() if name != "HEAD"}
            if refs != expected:
                raise SourceError("the restored repository's refs differ from the bundle's")
            branch = head if head in refs else _guess_head(refs, heads.get("HEAD"))
            if branch:
                process.run([*git, "symbolic-ref", "HEAD", branch], env=env, cwd=dest)
    _copy_lfs_objects(staged / LFS_OBJECTS, dest / LFS_OBJECTS)
    return refs


def git_push_mirror(
    bare: Path, remote: GitRemote, *, scratch: Path, timeout: float = process.DEFAULT_TIMEOUT
) -> None:
    """Push every ref of `bare` (and its LFS objects) to an EMPTY remote repository, and check
    the remote then has exactly those refs. A remote with any ref is refused: a restore never
    overwrites history."""
    bare = bare.absolute()
    _require_repository(bare)
    with _connect(remote, scratch=scratch) as conn:
        existing = _ls_remote(conn, timeout=timeout)
        if existing:
            raise SourceError(
                f"{remote.url} is not empty ({len(existing)} refs): a restore is pushed only"
                " into an empty repository"
            )
        git = ["git", f"--git-dir={bare}"]
        if _has_lfs_objects(bare / LFS_OBJECTS):
            if not conn.lfs_url:
                raise SourceError(f"{remote.url}: LFS objects cannot be pushed over {conn.scheme}")
            if not _lfs_installed():
                raise SourceError("git-lfs is not installed on the worker")
            lfs = [*git, "lfs", "push", "--all", conn.url]
            _run_git(lfs, conn=conn, cwd=bare, timeout=timeout, what="git lfs push")
        push = [*git, "push", "--mirror", "--quiet", "--", conn.url]
        _run_git(push, conn=conn, cwd=bare, timeout=timeout, what="git push")
        if _ls_remote(conn, timeout=timeout) != git_refs(bare):
            raise SourceError(f"{remote.url} did not take every ref pushed")


def git_refs(repo: Path) -> dict[str, str]:
    """Every ref of a local repository (branches, tags, notes, anything under refs/)."""
    with _local_env() as env:
        argv = ["git", f"--git-dir={repo.absolute()}", "for-each-ref"]
        listed = process.run([*argv, "--format=%(objectname) %(refname)"], env=env, cwd=repo)
    pairs = (line.split(" ", 1) for line in listed.stdout.decode().splitlines())
    return {name: sha for sha, name in pairs}


def git_fsck(repo: Path) -> tuple[bool, str]:
    """(clean, "ok" or the end of what fsck said): a full check, objects and connectivity."""
    argv = ["git", f"--git-dir={repo.absolute()}", "fsck", "--full"]
    with _local_env() as env, tempfile.TemporaryFile() as stdout:
        try:
            argv += ["--no-dangling", "--no-progress"]
            process.run(argv, env=env, cwd=repo, stdout=stdout, what="git fsck")
        except SourceError as error:
            stdout.seek(0)
            said = f"{stdout.read().decode(errors='replace').strip()}\n{error}".strip()
            return False, said[-_FSCK_TAIL:]
        stdout.seek(0)
        said = stdout.read().decode(errors="replace").strip()
    return True, said[-_FSCK_TAIL:] or "ok"


def git_ls_remote(
    remote: GitRemote, *, scratch: Path, timeout: float = process.DEFAULT_TIMEOUT
) -> dict[str, str]:
    """The remote's refs (under refs/, as `git_refs` lists them: no HEAD, no peeled tags)."""
    with _connect(remote, scratch=scratch) as conn:
        return _ls_remote(conn, timeout=timeout)


def _follow_remote_head(mirror: Path, *, conn: _Connection, timeout: float) -> None:
    """Point the mirror's HEAD where the remote's is now (fetch leaves it where clone put it),
    so a renamed default branch is the one a restore checks out."""
    argv = ["git", f"--git-dir={mirror}", "ls-remote", "--symref", "origin", "HEAD"]
    listed = _run_git(argv, conn=conn, cwd=mirror, timeout=timeout, what="git ls-remote")
    refs = git_refs(mirror)
    for line in listed.decode().splitlines():
        target, _, name = line.removeprefix("ref: ").partition("\t")
        if line.startswith("ref: ") and name == "HEAD" and target in refs:
            _run_git(["git", f"--git-dir={mirror}", "symbolic-ref", "HEAD", target], conn=conn)
