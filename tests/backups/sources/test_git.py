"""The git source against real servers on loopback: git daemon, smart HTTP behind Basic auth,
file:// remotes, and ssh through a stand-in `ssh` that runs the remote command locally (no
sshd on the test machines), so git's real ssh code path is exercised."""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from backups.sources import process
from backups.sources.git import (
    GitRemote,
    git_fsck,
    git_ls_remote,
    git_mirror_fetch,
    git_push_mirror,
    git_refs,
    git_repository_url,
    git_restore_bare,
    git_stage,
)
from backups.sources.process import (
    SourceCredentialsRefused,
    SourceError,
    SourceMissing,
    SourceUnreachable,
)
from tests.gitserver import (
    GitDaemon,
    GitHttp,
    commit_to,
    free_port,
    git,
    git_daemon,
    git_env,
    git_http,
    lfs_filters,
    make_lfs_repo,
    make_repo,
    refs_of,
    rev_list_all,
    running_git_daemon,
    running_git_http,
)

__all__ = ["git_daemon", "git_http"]


def _token_remote(server: GitHttp, path: str, *, token: str | None = None) -> GitRemote:
    return GitRemote(
        url=f"{server.base_url}{path}",
        credentials={"username": server.username, "token": token or server.token},
        pinned_address="127.0.0.1",
    )


def _file_remote(path: Path, *roots: Path) -> GitRemote:
    return GitRemote(url=f"file://{path}", file_roots=roots)


# --- git_repository_url -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "expected"),
    [
        ("https://git.example.com/", "team/app.git", "https://git.example.com/team/app.git"),
        ("https://git.example.com:8443/git", "app", "https://git.example.com:8443/git/app"),
        ("ssh://git@git.example.com/", "team/app.git", "ssh://git@git.example.com/team/app.git"),
        ("git://git.example.com:9418/", "a/b/c.git", "git://git.example.com:9418/a/b/c.git"),
        ("file:///srv/git/", "team/app.git", "file:///srv/git/team/app.git"),
        ("https://git.example.com/", "team/my_app-2.0+x.git", None),
    ],
)
def test_repository_url_joins_a_plain_path(base: str, path: str, expected: str | None) -> None:
    url = git_repository_url(base, path)
    assert url == (expected or f"{base.rstrip('/')}/{path}")


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("", "empty"),
        ("-oProxyCommand=x", "starts with '-'"),
        ("--upload-pack=touch /tmp/x", "starts with '-'"),
        ("/etc/passwd", "starts with '/'"),
        ("../x", "'..'"),
        ("a/../../b", "'..'"),
        ("a..b", "'..'"),
        ("a;rm -rf", "whitespace"),
        ("a;rm", "shell metacharacters: ;"),
        ("a|b", "shell metacharacters"),
        ("a&b", "shell metacharacters"),
        ("$(id)", "shell metacharacters"),
        ("`id`", "shell metacharacters"),
        ("a>b", "shell metacharacters"),
        ("a*", "shell metacharacters"),
        ("a?x=1", "shell metacharacters"),
        ("a#frag", "shell metacharacters"),
        ("~root/x", "shell metacharacters"),
        ("it's", "shell metacharacters"),
        ('a"b', "shell metacharacters"),
        ("a\\b", "shell metacharacters"),
        ("a%2e%2e/b", "shell metacharacters"),
        ("a\x00b", "NUL"),
        ("a\nb", "control character"),
        ("a\x1bb", "control character"),
        ("a b", "whitespace"),
        ("a\tb", "control character"),
        ("a\u00a0b", "whitespace"),
        ("caf\u00e9", "characters other than"),
        ("ext::sh -c x", "second URL or transport"),
        ("fd::17", "second URL or transport"),
        ("https://evil/", "second URL or transport"),
        ("x://y", "second URL or transport"),
        ("git@evil:x", "'@'"),
        ("team/app@evil", "'@'"),
    ],
)
def test_repository_url_refuses_a_hostile_path(path: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        git_repository_url("https://git.example.com/", path)


@pytest.mark.parametrize(
    ("base", "problem"),
    [
        ("ext::sh -c x", "transport helper"),
        ("ext::sh -c touch% /tmp/pwned", "transport helper"),
        ("http://git.example.com/", "must start with one of"),
        ("ftp://git.example.com/", "must start with one of"),
        ("x://y", "must start with one of"),
        ("git.example.com/", "must start with one of"),
        ("https:git.example.com/", "must start with one of"),
        ("https://user:secret@git.example.com/", "carries a password"),
        ("https://git.example.com/?x=1", "query or fragment"),
        ("https://git.example.com/#x", "query or fragment"),
        ("https://-oProxyCommand=x/", "no usable host"),
        ("ssh://-oProxyCommand=x/", "no usable host"),
        ("ssh://-oProxyCommand=x@host/", "unusable user name"),
        ("https://git.example.com:x/", "not a number"),
        ("https:///path/", "no usable host"),
        ("file://host/srv/git/", "no host"),
        ("file:///srv/$(id)/", "shell metacharacters"),
        ("https://[::1]/", "transport helper"),
        ("https://git.example.com /", "whitespace"),
    ],
)
def test_repository_url_refuses_a_hostile_base(base: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)) as raised:
        git_repository_url(base, "team/app.git")
    assert "secret" not in str(raised.value)


# --- mirroring over git daemon and file:// ------------------------------------------------


def test_mirror_clones_then_fetches_new_commits_and_prunes(
    git_daemon: GitDaemon, tmp_path: Path
) -> None:
    source = git_daemon.base_dir / "team" / "app.git"
    make_repo(source)
    remote = GitRemote(
        url=git_repository_url(git_daemon.base_url, "team/app.git"), pinned_address="127.0.0.1"
    )
    mirror = tmp_path / "scratch" / "mirror.git"

    git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "scratch")
    assert git_refs(mirror) == refs_of(source)
    assert {"refs/notes/commits", "refs/custom/keep", "refs/tags/v1.0"} <= set(git_refs(mirror))

    new = commit_to(source, branch="main", filename="CHANGES", content=b"second run\n")
    git("--git-dir", str(source), "update-ref", "-d", "refs/heads/old-branch")
    git("--git-dir", str(source), "tag", "v2.0", new)
    git("--git-dir", str(source), "symbolic-ref", "HEAD", "refs/heads/feature/login")
    git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "scratch")

    refs = git_refs(mirror)
    assert refs == refs_of(source)
    assert refs["refs/heads/main"] == new
    assert "refs/heads/old-branch" not in refs
    assert "refs/tags/v2.0" in refs
    # The default branch moved on the server, and the mirror's HEAD followed it.
    assert git(f"--git-dir={mirror}", "symbolic-ref", "HEAD").strip() == "refs/heads/feature/login"
    # Nothing of ours is left in the scratch directory but the mirror.
    assert [p.name for p in (tmp_path / "scratch").iterdir()] == ["mirror.git"]


def test_mirror_over_file_inside_a_root(tmp_path: Path) -> None:
    root = tmp_path / "roots"
    source = root / "team" / "app.git"
    make_repo(source)
    remote = GitRemote(
        url=git_repository_url(f"file://{root}/", "team/app.git"), file_roots=(root,)
    )

    git_mirror_fetch(remote, mirror=tmp_path / "mirror.git", scratch=tmp_path / "scratch")

    assert git_refs(tmp_path / "mirror.git") == refs_of(source)
    assert git_ls_remote(remote, scratch=tmp_path / "scratch") == refs_of(source)


@pytest.mark.parametrize("where", ["outside", "symlink", "dotdot-by-link", "no-roots"])
def test_file_remote_outside_its_roots_is_refused_before_git_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    outside = tmp_path / "outside.git"
    make_repo(outside)
    (root / "link.git").symlink_to(outside)
    (root / "up").symlink_to(tmp_path)
    path = {
        "outside": outside,
        "symlink": root / "link.git",
        "dotdot-by-link": root / "up" / "outside.git",
        "no-roots": root / "link.git",
    }[where]
    ran: list[Sequence[str]] = []
    monkeypatch.setattr(process, "run", lambda argv, **_: ran.append(argv))
    remote = _file_remote(path) if where == "no-roots" else _file_remote(path, root)

    with pytest.raises(SourceError, match="not inside a directory allowed"):
        git_mirror_fetch(remote, mirror=tmp_path / "mirror.git", scratch=tmp_path / "scratch")
    with pytest.raises(SourceError, match="not inside a directory allowed"):
        git_push_mirror(outside, remote, scratch=tmp_path / "scratch")

    assert ran == []
    assert not (tmp_path / "mirror.git").exists()


# --- stage, restore, clone ----------------------------------------------------------------


def test_stage_then_restore_gives_the_same_repository(tmp_path: Path) -> None:
    source = tmp_path / "src" / "app.git"
    make_repo(source)
    mirror = tmp_path / "mirror.git"
    git_mirror_fetch(_file_remote(source, tmp_path / "src"), mirror=mirror, scratch=tmp_path / "s")
    staged = tmp_path / "staged"
    staged.mkdir()

    meta = git_stage(mirror, out=staged)

    assert meta["refs"] == refs_of(source)
    assert meta["head"] == "refs/heads/main"
    assert (meta["fsck"], meta["fsck_ok"]) == ("ok", True)
    assert meta["lfs_objects"] == 0
    assert meta["bundle_bytes"] == (staged / "repository.bundle").stat().st_size > 0
    assert sorted(p.name for p in staged.iterdir()) == ["repository.bundle"]
    git("bundle", "verify", "--quiet", str(staged / "repository.bundle"), cwd=mirror)

    restored = tmp_path / "restored.git"
    refs = git_restore_bare(staged, dest=restored)

    assert refs == refs_of(source) == refs_of(restored)
    assert git(f"--git-dir={restored}", "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    clone = tmp_path / "clone.git"
    git("clone", "--quiet", "--mirror", str(restored), str(clone))
    assert refs_of(clone) == refs_of(source)
    assert rev_list_all(clone) == rev_list_all(source)
    assert git(f"--git-dir={clone}", "notes", "show", "refs/heads/main") == "reviewed\n"
    assert git(f"--git-dir={clone}", "cat-file", "-t", "refs/tags/v1.0").strip() == "tag"
    work = tmp_path / "work"
    git("clone", "--quiet", str(restored), str(work))
    assert (work / "data.bin").read_bytes() == bytes(range(256))
    assert git_fsck(restored) == (True, "ok")


def test_restore_keeps_the_staged_head_and_refuses_a_used_destination(tmp_path: Path) -> None:
    source = tmp_path / "app.git"
    make_repo(source)
    staged = tmp_path / "staged"
    staged.mkdir()
    git_stage(source, out=staged)

    git_restore_bare(staged, dest=tmp_path / "a.git", head="refs/heads/feature/login")

    head = git(f"--git-dir={tmp_path / 'a.git'}", "symbolic-ref", "HEAD").strip()
    assert head == "refs/heads/feature/login"
    with pytest.raises(SourceError, match="not empty"):
        git_restore_bare(staged, dest=tmp_path / "a.git")
    with pytest.raises(SourceError, match="empty directory"):
        git_stage(source, out=staged)


def test_fsck_failure_is_recorded_not_hidden(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror.git"
    make_repo(mirror)
    # An unreachable object that is corrupt: the bundle of the refs is still whole, fsck not.
    (mirror / "objects" / "ff").mkdir(exist_ok=True)
    (mirror / "objects" / "ff" / ("0" * 38)).write_bytes(b"not a zlib stream")
    staged = tmp_path / "staged"
    staged.mkdir()

    meta = git_stage(mirror, out=staged)

    assert meta["fsck_ok"] is False
    assert "ff" + "0" * 38 in str(meta["fsck"])
    assert git_fsck(mirror)[0] is False
    assert git_restore_bare(staged, dest=tmp_path / "restored.git") == refs_of(mirror)


def test_empty_repository_round_trip(git_daemon: GitDaemon, tmp_path: Path) -> None:
    git("init", "--quiet", "--bare", str(git_daemon.base_dir / "empty.git"))
    remote = GitRemote(url=f"{git_daemon.base_url}empty.git", pinned_address="127.0.0.1")
    mirror = tmp_path / "mirror.git"

    git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "s")
    git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "s")
    staged = tmp_path / "staged"
    staged.mkdir()
    meta = git_stage(mirror, out=staged)

    assert meta == {
        "refs": {},
        "head": None,
        "fsck": "ok",
        "fsck_ok": True,
        "lfs_objects": 0,
        "bundle_bytes": 0,
    }
    assert list(staged.iterdir()) == []
    restored = tmp_path / "restored.git"
    assert git_restore_bare(staged, dest=restored) == {}
    assert refs_of(restored) == {}
    git("clone", "--quiet", str(restored), str(tmp_path / "work"))


def test_lfs_objects_are_mirrored_staged_restored_and_pushed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    content = os.urandom(5000)
    ids = make_lfs_repo(root / "lfs.git", files={"model.bin": content})
    oid = ids["model.bin"]
    relative = Path("lfs", "objects", oid[:2], oid[2:4], oid)
    mirror = tmp_path / "mirror.git"

    git_mirror_fetch(_file_remote(root / "lfs.git", root), mirror=mirror, scratch=tmp_path / "s")
    assert (mirror / relative).read_bytes() == content
    staged = tmp_path / "staged"
    staged.mkdir()
    meta = git_stage(mirror, out=staged)
    assert meta["lfs_objects"] == 1
    assert (staged / relative).read_bytes() == content

    restored = tmp_path / "restored.git"
    git_restore_bare(staged, dest=restored)
    assert (restored / relative).read_bytes() == content
    work = tmp_path / "work"
    env = git_env(tmp_path)
    git(*lfs_filters(), "clone", "--quiet", f"file://{restored}", str(work), env=env)
    assert (work / "model.bin").read_bytes() == content

    target = root / "target.git"
    git("init", "--quiet", "--bare", str(target))
    git_push_mirror(restored, _file_remote(target, root), scratch=tmp_path / "s")
    assert refs_of(target) == refs_of(root / "lfs.git")
    assert (target / relative).read_bytes() == content


def test_a_repository_lfsconfig_cannot_send_lfs_elsewhere(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ids = make_lfs_repo(root / "lfs.git", files={"model.bin": b"weights" * 500})
    decoy = tmp_path / "decoy.git"  # outside the roots, and without the object
    git("init", "--quiet", "--bare", str(decoy))
    lfsconfig = f"[lfs]\n\turl = file://{decoy}\n".encode()
    commit_to(root / "lfs.git", branch="main", filename=".lfsconfig", content=lfsconfig)
    # git-lfs on its own does follow the repository's .lfsconfig (to the decoy, and fails):
    plain = tmp_path / "plain.git"
    git("clone", "--quiet", "--mirror", str(root / "lfs.git"), str(plain))
    with pytest.raises(AssertionError, match="decoy"):
        git("lfs", "fetch", "--all", "origin", cwd=plain, env=git_env(tmp_path))

    mirror = tmp_path / "mirror.git"
    git_mirror_fetch(_file_remote(root / "lfs.git", root), mirror=mirror, scratch=tmp_path / "s")

    oid = ids["model.bin"]
    assert (mirror / "lfs" / "objects" / oid[:2] / oid[2:4] / oid).is_file()


def test_lfs_objects_are_not_dropped_on_a_push_over_git_protocol(
    git_daemon: GitDaemon, tmp_path: Path
) -> None:
    bare = tmp_path / "restored.git"
    make_repo(bare)
    oid = "ab" * 32
    (bare / "lfs" / "objects" / "ab" / "ab").mkdir(parents=True)
    (bare / "lfs" / "objects" / "ab" / "ab" / oid).write_bytes(b"large")
    target = git_daemon.base_dir / "target.git"
    git("init", "--quiet", "--bare", str(target))
    remote = GitRemote(url=f"{git_daemon.base_url}target.git", pinned_address="127.0.0.1")

    with pytest.raises(SourceError, match="LFS objects cannot be pushed over git"):
        git_push_mirror(bare, remote, scratch=tmp_path / "s")
    assert refs_of(target) == {}


def test_restore_refuses_an_lfs_object_that_does_not_match_its_name(tmp_path: Path) -> None:
    staged = tmp_path / "staged"
    wrong = staged / "lfs" / "objects" / "ab" / "cd" / ("abcd" + "0" * 60)
    wrong.parent.mkdir(parents=True)
    wrong.write_bytes(b"something else")

    with pytest.raises(SourceError, match="does not match its content"):
        git_restore_bare(staged, dest=tmp_path / "restored.git")


# --- pushing a restore back ---------------------------------------------------------------


def test_push_mirror_fills_an_empty_repository_and_refuses_a_used_one(
    git_daemon: GitDaemon, tmp_path: Path
) -> None:
    source = tmp_path / "app.git"
    make_repo(source)
    target = git_daemon.base_dir / "restore.git"
    git("init", "--quiet", "--bare", str(target))
    remote = GitRemote(url=f"{git_daemon.base_url}restore.git", pinned_address="127.0.0.1")

    git_push_mirror(source, remote, scratch=tmp_path / "s")

    assert refs_of(target) == refs_of(source)
    assert git_ls_remote(remote, scratch=tmp_path / "s") == refs_of(source)
    commit_to(source, branch="main", filename="later", content=b"later\n")
    with pytest.raises(SourceError, match="is not empty"):
        git_push_mirror(source, remote, scratch=tmp_path / "s")
    assert refs_of(target)["refs/heads/main"] != refs_of(source)["refs/heads/main"]


# --- HTTP with a token --------------------------------------------------------------------


def test_http_with_the_right_token_mirrors(git_http: GitHttp, tmp_path: Path) -> None:
    make_repo(git_http.base_dir / "app.git")
    mirror = tmp_path / "mirror.git"

    git_mirror_fetch(_token_remote(git_http, "app.git"), mirror=mirror, scratch=tmp_path / "s")
    git_mirror_fetch(_token_remote(git_http, "app.git"), mirror=mirror, scratch=tmp_path / "s")

    assert git_refs(mirror) == refs_of(git_http.base_dir / "app.git")
    config = (mirror / "config").read_text()
    assert git_http.token not in config
    assert f"url = {git_http.base_url}app.git\n" in config


def test_http_with_a_wrong_or_no_token_is_refused(git_http: GitHttp, tmp_path: Path) -> None:
    make_repo(git_http.base_dir / "app.git")
    wrong = "wrong-token-3f9a1c"

    with pytest.raises(SourceCredentialsRefused) as refused:
        git_mirror_fetch(
            _token_remote(git_http, "app.git", token=wrong),
            mirror=tmp_path / "m.git",
            scratch=tmp_path / "s",
        )
    assert "refused the credentials" in str(refused.value)
    assert "Authentication failed" in str(refused.value)
    assert wrong not in str(refused.value)
    assert git_http.token not in str(refused.value)

    anonymous = GitRemote(url=f"{git_http.base_url}app.git", pinned_address="127.0.0.1")
    with pytest.raises(SourceCredentialsRefused, match="could not read Username"):
        git_ls_remote(anonymous, scratch=tmp_path / "s")


def _scan_cmdlines(stop: threading.Event, needle: bytes, marker: bytes, seen: dict[str, Any]):
    while not stop.is_set():
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue  # gone already
            if needle in cmdline:
                seen["leaks"].append(cmdline)
            if marker in cmdline and cmdline.split(b"\0")[0].rsplit(b"/", 1)[-1].startswith(b"git"):
                seen["git"].add(cmdline)


def test_the_token_is_on_no_command_line_and_in_no_file(git_http: GitHttp, tmp_path: Path) -> None:
    make_repo(git_http.base_dir / "app.git")
    marker = git_http.base_url.encode()  # every git process of this test names its server
    seen: dict[str, Any] = {"leaks": [], "git": set()}
    stop = threading.Event()
    scanner = threading.Thread(
        target=_scan_cmdlines, args=(stop, git_http.token.encode(), marker, seen)
    )
    scanner.start()
    mirror = tmp_path / "scratch" / "mirror.git"
    try:
        # /slow/: every request waits, so git and its helpers are alive long enough to be seen.
        remote = _token_remote(git_http, "slow/app.git")
        git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "scratch")
        git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "scratch")
    finally:
        stop.set()
        scanner.join()

    assert seen["leaks"] == []
    assert any(b"git-remote-http" in line for line in seen["git"]), seen["git"]
    assert git_refs(mirror) == refs_of(git_http.base_dir / "app.git")
    token = git_http.token.encode()
    assert [p for p in mirror.rglob("*") if p.is_file() and token in p.read_bytes()] == []
    # The askpass script and its private directory are gone with the command.
    assert [p.name for p in (tmp_path / "scratch").iterdir()] == ["mirror.git"]


def test_every_command_gets_a_clean_environment_and_argv(
    git_http: GitHttp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_repo(git_http.base_dir / "app.git")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "server-own-secret")
    monkeypatch.setenv("GIT_SSH_COMMAND", "touch /tmp/should-not-run")
    calls: list[tuple[list[str], dict[str, str]]] = []
    real_run = process.run

    def recording_run(argv: Sequence[str], *, env: dict[str, str], **kwargs: Any):
        calls.append((list(argv), dict(env)))
        askpass = env.get("GIT_ASKPASS")
        if askpass:
            script = Path(askpass)
            assert git_http.token not in script.read_text()
            assert stat.S_IMODE(script.stat().st_mode) == 0o700
            assert stat.S_IMODE(script.parent.stat().st_mode) == 0o700
        return real_run(argv, env=env, **kwargs)

    monkeypatch.setattr(process, "run", recording_run)
    port = git_http.base_url.rsplit(":", 1)[1].strip("/")

    git_mirror_fetch(
        _token_remote(git_http, "app.git"), mirror=tmp_path / "m.git", scratch=tmp_path / "s"
    )

    network = [(argv, env) for argv, env in calls if "GIT_ASKPASS" in env]
    assert network, "the clone ran with the askpass helper"
    for argv, env in calls:
        assert argv[0] == "git"
        assert "-c" not in argv
        assert not any(git_http.token in arg for arg in argv)
        assert "AWS_SECRET_ACCESS_KEY" not in env
        assert "GIT_SSH_COMMAND" not in env
        assert env["GIT_CONFIG_NOSYSTEM"] == "1"
        assert env["GIT_CONFIG_GLOBAL"] == "/dev/null"
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        config = {
            env[f"GIT_CONFIG_KEY_{n}"]: env[f"GIT_CONFIG_VALUE_{n}"]
            for n in range(int(env["GIT_CONFIG_COUNT"]))
        }
        assert config["protocol.allow"] == "never"
        assert config["core.hooksPath"] == "/dev/null"
        assert config["credential.helper"] == ""
        assert config["http.followRedirects"] == "false"
    for _argv, env in network:
        assert env["GIT_ALLOW_PROTOCOL"] == "http"
        assert env["AGENCYOPS_GIT_PASSWORD"] == git_http.token
        config = {
            env[f"GIT_CONFIG_KEY_{n}"]: env[f"GIT_CONFIG_VALUE_{n}"]
            for n in range(int(env["GIT_CONFIG_COUNT"]))
        }
        assert config["protocol.http.allow"] == "always"
        assert "protocol.file.allow" not in config
        assert config["http.curloptResolve"] == f"127.0.0.1:{port}:127.0.0.1"
        assert config["lfs.url"] == f"{git_http.base_url}app.git/info/lfs"
    clone = next(argv for argv, _ in calls if argv[1:2] == ["clone"])
    assert clone[clone.index("--") + 1] == f"{git_http.base_url}app.git"


def test_pinned_address_is_where_git_connects(tmp_path: Path) -> None:
    # The servers listen on 127.0.0.2 only; "localhost" resolves to 127.0.0.1 (and ::1), where
    # nothing listens: only a connection to the pinned address reaches them.
    with (
        running_git_http(tmp_path / "h", host="127.0.0.2") as server,
        running_git_daemon(tmp_path / "d", host="127.0.0.2") as daemon,
    ):
        served = {
            "http": make_repo(server.base_dir / "app.git"),
            "git": make_repo(daemon.base_dir / "app.git"),
        }
        http_port = server.base_url.rsplit(":", 1)[1].strip("/")
        daemon_port = daemon.base_url.rsplit(":", 1)[1].strip("/")
        credentials = {"username": server.username, "token": server.token}
        http_url = f"http://localhost:{http_port}/app.git"
        git_url = f"git://localhost:{daemon_port}/app.git"

        for url, credit in ((http_url, credentials), (git_url, None)):
            pinned = GitRemote(url=url, credentials=credit, pinned_address="127.0.0.2")
            assert git_ls_remote(pinned, scratch=tmp_path / "s") == served[url.split(":")[0]]
            with pytest.raises(SourceUnreachable):
                git_ls_remote(GitRemote(url=url, credentials=credit), scratch=tmp_path / "s")

        mismatch = GitRemote(
            url=f"git://127.0.0.1:{daemon_port}/app.git", pinned_address="10.0.0.1"
        )
        with pytest.raises(SourceError, match="not the pinned address"):
            git_ls_remote(mismatch, scratch=tmp_path / "s")


# --- what goes wrong ----------------------------------------------------------------------


def test_a_missing_repository_is_said_so(
    git_daemon: GitDaemon, git_http: GitHttp, tmp_path: Path
) -> None:
    (tmp_path / "root").mkdir()
    remotes = [
        GitRemote(url=f"{git_daemon.base_url}nope.git", pinned_address="127.0.0.1"),
        _token_remote(git_http, "nope.git"),
        _file_remote(tmp_path / "root" / "nope.git", tmp_path / "root"),
    ]
    for remote in remotes:
        with pytest.raises(SourceMissing, match="not found"):
            git_mirror_fetch(remote, mirror=tmp_path / "m.git", scratch=tmp_path / "s")
        assert not any((tmp_path / "m.git").iterdir())


def test_an_unreachable_port_is_said_so(tmp_path: Path) -> None:
    port = free_port()  # nobody listens on it
    for url in (f"git://127.0.0.1:{port}/app.git", f"http://127.0.0.1:{port}/app.git"):
        with pytest.raises(SourceUnreachable, match="could not be reached"):
            git_mirror_fetch(
                GitRemote(url=url, pinned_address="127.0.0.1"),
                mirror=tmp_path / "m.git",
                scratch=tmp_path / "s",
            )


@pytest.mark.parametrize(
    ("remote", "problem"),
    [
        (
            GitRemote(
                url="git://h.example.test/a.git", credentials={"username": "u", "token": "t"}
            ),
            "only over HTTPS",
        ),
        (
            GitRemote(url="https://h.example.test/a.git", credentials={"ssh_private_key": "k"}),
            "only over ssh",
        ),
        (
            GitRemote(url="https://h.example.test/a.git", credentials={"password": "p"}),
            "credentials must be",
        ),
        (
            GitRemote(
                url="https://h.example.test/a.git", credentials={"username": "u", "token": "a\nb"}
            ),
            "one line each",
        ),
        (
            GitRemote(url="https://h.example.test/a.git", pinned_address="h.example.test"),
            "not an IP address",
        ),
        (GitRemote(url="file:///srv/a.git", pinned_address="127.0.0.1"), "no address to pin"),
        (GitRemote(url="ext::sh -c touch% /tmp/x"), "transport helper"),
        (GitRemote(url="https://h.example.test/-x/../a.git"), "'..'"),
        (GitRemote(url="fd::3"), "transport helper"),
    ],
)
def test_unusable_remotes_are_refused_before_git_runs(
    remote: GitRemote, problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[Sequence[str]] = []
    monkeypatch.setattr(process, "run", lambda argv, **_: ran.append(argv))

    with pytest.raises(SourceError, match=re.escape(problem)):
        git_ls_remote(remote, scratch=tmp_path / "s")

    assert ran == []


# --- ssh ----------------------------------------------------------------------------------

_KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAA-not-a-real-key"
_FAKE_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{_KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----"

_FAKE_SSH = """#!/bin/sh
# A stand-in for ssh: records how git called it and the key file it was handed, then runs the
# remote command here, as sshd would on the server.
printf '%s\\n' "$@" > "{record}/argv"
previous=""
for arg in "$@"; do
    if [ "$previous" = "-i" ]; then
        stat -c %a "$arg" > "{record}/mode"
        cat "$arg" > "{record}/key"
        printf '%s\\n' "$arg" > "{record}/key-path"
    fi
    previous="$arg"
done
case "$*" in
*denied.example.test*)
    echo "git@denied.example.test: Permission denied (publickey)." >&2
    exit 255 ;;
esac
for last; do :; done
exec sh -c "$last"
"""


@pytest.fixture
def fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    record = tmp_path / "ssh-record"
    bin_dir.mkdir()
    record.mkdir()
    script = bin_dir / "ssh"
    script.write_text(_FAKE_SSH.replace("{record}", str(record)))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return record


def test_ssh_key_goes_through_a_private_file_and_the_pin_through_hostname(
    fake_ssh: Path, tmp_path: Path
) -> None:
    source = tmp_path / "srv" / "app.git"
    refs = make_repo(source)
    remote = GitRemote(
        url=git_repository_url("ssh://git@git.example.test:2222/", str(source).lstrip("/")),
        credentials={"ssh_private_key": _FAKE_KEY},
        pinned_address="127.0.0.1",
    )
    mirror = tmp_path / "mirror.git"

    git_mirror_fetch(remote, mirror=mirror, scratch=tmp_path / "s")

    assert git_refs(mirror) == refs
    argv = (fake_ssh / "argv").read_text().splitlines()
    options = [argv[i + 1] for i, arg in enumerate(argv) if arg == "-o"]
    assert {
        "IdentitiesOnly=yes",
        "BatchMode=yes",
        "StrictHostKeyChecking=accept-new",
        "HostName=127.0.0.1",
    } <= set(options)
    assert argv[argv.index("-F") + 1] == "/dev/null"
    assert argv[argv.index("-p") + 1] == "2222"
    assert "git@git.example.test" in argv
    assert not any("PRIVATE KEY" in arg or _KEY_BODY in arg for arg in argv)
    assert (fake_ssh / "key").read_text() == _FAKE_KEY + "\n"
    assert (fake_ssh / "mode").read_text().strip() == "600"
    assert not Path((fake_ssh / "key-path").read_text().strip()).exists()
    assert list((tmp_path / "s").iterdir()) == []


def test_ssh_refused_key_and_anonymous_ssh(fake_ssh: Path, tmp_path: Path) -> None:
    source = tmp_path / "srv" / "app.git"
    refs = make_repo(source)
    denied = GitRemote(
        url=f"ssh://git@denied.example.test{source}",
        credentials={"ssh_private_key": _FAKE_KEY},
        pinned_address="127.0.0.1",
    )
    with pytest.raises(SourceCredentialsRefused, match="Permission denied") as refused:
        git_ls_remote(denied, scratch=tmp_path / "s")
    assert _KEY_BODY not in str(refused.value)

    anonymous = GitRemote(url=f"ssh://git.example.test{source}", pinned_address="127.0.0.1")
    assert git_ls_remote(anonymous, scratch=tmp_path / "s") == refs
    argv = (fake_ssh / "argv").read_text().splitlines()
    assert "-i" not in argv
    assert "IdentityFile=none" in argv
