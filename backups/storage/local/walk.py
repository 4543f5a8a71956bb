"""Reaching a key below the local store's root without following a symbolic link: every
directory opened relative to its parent's descriptor with O_NOFOLLOW | O_DIRECTORY, the final
file opened relative to the last one with O_NOFOLLOW (see `backups.storage.local.store`)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backups.storage.base import ObjectInfo, validate_key
from backups.storage.errors import AccessDenied, InvalidKey, ObjectNotFound, StoreNotFound

# Temporary files carry this prefix; listing skips them and keys may not use it.
TMP_PREFIX = ".agencyops-tmp-"

# Directories on the way to a key. O_PATH (Linux) opens without reading the directory: only
# search permission is needed, and a descriptor that cannot be read by mistake. O_DIRECTORY
# with O_NOFOLLOW refuses a symlink (and anything else that is not a directory) as a component.
WALK_FLAGS = os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | getattr(os, "O_PATH", os.O_RDONLY)
# Directories being listed: scandir needs a readable descriptor, and one of its own (scandir
# works on a dup that shares the read position, so a shared descriptor would garble listings
# running in two threads).
LIST_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Reads: O_NONBLOCK so that a FIFO swapped in after the type check cannot hang the open (the
# descriptor is checked again before use; regular files ignore the flag).
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# What open() with O_NOFOLLOW | O_DIRECTORY answers for a symlink or a non-directory: ELOOP or
# ENOTDIR on Linux, EMLINK on FreeBSD.
REFUSED = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})
# mkdir and open race with a concurrent prune of an empty directory; retry that many times.
CREATE_ATTEMPTS = 3


class SymlinkOnPath(Exception):
    """Component `index` of the walked parts is a symbolic link (never followed)."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class NotADirectoryOnPath(Exception):
    """Component `index` of the walked parts exists and is not a directory."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def not_followed(key: str, link: str) -> InvalidKey:
    return InvalidKey(f"{link!r} (on the way to {key!r}) is a symbolic link; not followed")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def mtime_of(ns: int) -> datetime:
    # Built from integer nanoseconds: a float timestamp would round and make an unchanged file
    # look modified to the incremental backup. One addition, not fromtimestamp and replace:
    # this runs once per file listed.
    return _EPOCH + timedelta(microseconds=ns // 1000)


def object_info(key: str, st: os.stat_result) -> ObjectInfo:
    # Local files have no content hash for free; size and nanosecond mtime change whenever a
    # writer touches the file, which is what the incremental backup needs to notice.
    return ObjectInfo(
        key=key,
        size=st.st_size,
        mtime=mtime_of(st.st_mtime_ns),
        etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
    )


def close_all(fds: Iterable[int]) -> None:
    for fd in fds:
        os.close(fd)


def open_root(path: Path) -> int:
    """The resolved root, opened from '/' one component at a time without following any
    symlink: the directory the caller checked, or a refusal if the path changed since."""
    fd = os.open("/", WALK_FLAGS)
    try:
        for part in path.parts[1:]:
            try:
                child = os.open(part, WALK_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                raise StoreNotFound(f"local store directory does not exist: {path}") from None
            except OSError as exc:
                if exc.errno not in REFUSED:
                    raise
                raise AccessDenied(
                    f"local store directory {path} changed while being opened ({part!r} is "
                    "now a symbolic link or not a directory); not followed"
                ) from None
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_dir(parent: int, name: str, index: int, *, create: bool, readable: bool) -> int:
    flags = LIST_FLAGS if readable else WALK_FLAGS
    for attempt in range(CREATE_ATTEMPTS):
        try:
            return os.open(name, flags, dir_fd=parent)
        except FileNotFoundError:
            if not create or attempt == CREATE_ATTEMPTS - 1:
                raise
        except OSError as exc:
            if exc.errno not in REFUSED:
                raise
            try:
                st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                continue  # replaced and removed meanwhile: look again
            if stat.S_ISLNK(st.st_mode):
                raise SymlinkOnPath(index) from None
            raise NotADirectoryOnPath(index) from None
        # FileExistsError: another writer made it, or something else is there (the next
        # open says which).
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o777, dir_fd=parent)
    raise FileNotFoundError(errno.ENOENT, "directory keeps disappearing", name)


def open_file(parent: int, name: str, key: str, missing: ObjectNotFound) -> int:
    # Checked before opening, so a FIFO or a device is never opened at all; the caller
    # checks the descriptor again (the entry may have been swapped in between).
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        raise missing from None
    if stat.S_ISLNK(st.st_mode):
        raise not_followed(key, key)
    if not stat.S_ISREG(st.st_mode):
        raise missing
    try:
        return os.open(name, READ_FLAGS, dir_fd=parent)
    except FileNotFoundError:
        raise missing from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # swapped for a symlink since the stat
            raise not_followed(key, key) from None
        raise


def key_start(prefix: str) -> tuple[str, ...]:
    # Walk only the directory the prefix names, then filter by string prefix like S3 does.
    directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
    if not directory:
        return ()
    validate_key(directory)
    return tuple(directory.split("/"))


def enter_dir(parent: int, name: str, key: str, declined: Callable[[str], None]) -> tuple[int, str]:
    try:
        return os.open(name, LIST_FLAGS, dir_fd=parent), key
    except FileNotFoundError:
        return -1, key
    except OSError as exc:
        if exc.errno not in REFUSED:
            raise
        declined(key)  # swapped for a symlink (or a file) since the directory was read
        return -1, key


def prune_empty_parents(chain: Sequence[int], directories: Sequence[str]) -> None:
    # Empty directories are not objects; removing them keeps a post-deletion listing of the
    # local medium truly empty. chain[i] is the directory holding directories[i]; rmdir
    # never follows a symlink, and the root itself is never removed.
    for index in range(len(directories) - 1, -1, -1):
        try:
            os.rmdir(directories[index], dir_fd=chain[index])
        except OSError:
            return


def walk_files(
    fd: int, rel: str, prefix: str, *, temporary: bool, declined: Callable[[str], None]
) -> Iterator[tuple[int, str, str, os.stat_result]]:
    """(directory fd, name, key, lstat) of every regular file below the listable directory
    `fd` (key `rel`; this walk closes it) whose key starts with `prefix`, in key order (one
    directory's entries held at a time); the fd is valid until
    the next item. Directories are opened with O_NOFOLLOW one by one, so a symlink swapped in
    mid-walk is refused, not entered; what is declined goes to `declined`. Iterative, holding
    one descriptor per level: a deep tree cannot exhaust the stack."""
    levels: list[tuple[int, str, Iterator[os.DirEntry[str]]]] = []
    try:
        while True:
            with os.scandir(fd) as scan:
                # In key order: a directory sorts as its name plus "/", which is where its
                # files' keys fall among its siblings ("a-b" < "a.txt" < "a/x"), so the walk
                # yields keys already sorted without holding the whole tree.
                entries = sorted(
                    scan, key=lambda e: e.name + "/" if e.is_dir(follow_symlinks=False) else e.name
                )
            levels.append((fd, rel, iter(entries)))
            fd = -1
            while levels and fd < 0:
                parent, parent_rel, pending = levels[-1]
                entry = next(pending, None)
                if entry is None:
                    levels.pop()
                    os.close(parent)
                    continue
                key = f"{parent_rel}/{entry.name}" if parent_rel else entry.name
                if entry.is_symlink():
                    declined(key)
                elif entry.name.startswith(TMP_PREFIX) and not temporary:
                    continue
                elif entry.is_dir(follow_symlinks=False):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        fd, rel = enter_dir(parent, entry.name, key, declined)
                elif key.startswith(prefix):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted since the directory was read
                    if stat.S_ISREG(st.st_mode):
                        yield parent, entry.name, key, st
                    else:  # FIFO, socket, device, or a symlink swapped in meanwhile
                        declined(key)
            if fd < 0:
                return
    finally:
        if fd >= 0:
            os.close(fd)
        close_all(level[0] for level in levels)
