"""Local repositories: HEAD, refs and the LFS objects a mirror, a bundle or a restored bare
repository holds."""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from backups.sources import process
from backups.sources.git.remote import _local_env
from backups.sources.process import (
    SourceError,
)

BUNDLE_NAME = "repository.bundle"
LFS_OBJECTS = Path("lfs") / "objects"
_LFS_OBJECT = re.compile(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}")
_FSCK_TAIL = 4000


# --- local repositories -------------------------------------------------------------------


def _require_repository(path: Path) -> None:
    if not (path / "HEAD").is_file() or not (path / "objects").is_dir():
        raise SourceError(f"{path} is not a bare git repository")


def _symbolic_head(repo: Path) -> str | None:
    with _local_env() as env:
        argv = ["git", f"--git-dir={repo}", "symbolic-ref", "-q", "HEAD"]
        try:
            done = process.run(argv, env=env, cwd=repo)
        except SourceError:
            return None  # detached
    return done.stdout.decode().strip() or None


def _guess_head(refs: Mapping[str, str], head_sha: str | None) -> str | None:
    """The branch a bundle's HEAD was (what `git clone` of it would pick)."""
    branches = sorted(name for name in refs if name.startswith("refs/heads/"))
    preferred = ["refs/heads/main", "refs/heads/master", *branches]
    matching = [name for name in preferred if name in refs and refs[name] == head_sha]
    fallback = [name for name in preferred if name in refs]
    chosen = matching or fallback
    return chosen[0] if chosen else None


def _lfs_installed() -> bool:
    return shutil.which("git-lfs") is not None


def _has_lfs_objects(root: Path) -> bool:
    return root.is_dir() and any(path.is_file() for path in root.rglob("*"))


def _copy_lfs_objects(source: Path, dest: Path) -> int:
    """Copy LFS objects (lfs/objects/ab/cd/<sha256>), each checked against its name; anything
    else found there (temporary files, links) is left behind. Returns how many."""
    if not source.is_dir():
        return 0
    copied = 0
    for path in sorted(source.rglob("*")):
        name = path.relative_to(source).as_posix()
        if path.is_symlink() or not path.is_file() or not _LFS_OBJECT.fullmatch(name):
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with path.open("rb") as reader, target.open("wb") as writer:
            for block in iter(lambda: reader.read(1 << 20), b""):
                digest.update(block)
                writer.write(block)
        if digest.hexdigest() != path.name:
            raise SourceError(f"LFS object {path.name} does not match its content")
        copied += 1
    return copied
