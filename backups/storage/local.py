"""`ObjectStore` over a local directory: the embedded default target and a second medium.

Keys map to files under the root. Writes go to a temporary file in the same directory and are
renamed into place, so a crash leaves either the old object or the new one, never half of one.
"""

from __future__ import annotations

import builtins
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from backups.storage.base import (
    NULL_VERSION,
    DeleteError,
    DeleteResult,
    ObjectInfo,
    ObjectVersion,
    readinto_of,
    validate_key,
)
from backups.storage.errors import InvalidKey, ObjectNotFound, StorageError, StoreNotFound

# Temporary files carry this prefix; listing skips them and keys may not use it.
TMP_PREFIX = ".agencyops-tmp-"
# Larger than a backup chunk, so a stream handing out whole chunks is written without slicing.
_COPY_BUFFER = 8 * 1024 * 1024
# Streams with readinto are copied through this buffer (they hand out pieces of any size).
_READINTO_BUFFER = 1024 * 1024


def _copy_readinto(readinto: Callable[[memoryview], int], out: BinaryIO) -> None:
    """Copy a stream through one reused buffer: no new bytes object per read."""
    view = memoryview(bytearray(_READINTO_BUFFER))
    while True:
        n = readinto(view)
        if not n:
            return
        out.write(view[:n])


def _mtime(ns: int) -> datetime:
    # Built from integer nanoseconds: a float timestamp would round and make an unchanged file
    # look modified to the incremental backup.
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).replace(
        microsecond=(ns // 1000) % 1_000_000
    )


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    # Local files have no content hash for free; size and nanosecond mtime change whenever a
    # writer touches the file, which is what the incremental backup needs to notice.
    return ObjectInfo(
        key=key,
        size=st.st_size,
        mtime=_mtime(st.st_mtime_ns),
        etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
    )


class LocalObjectStore:
    """Objects as files under `root`; keys are relative '/'-separated paths that stay inside it."""

    def __init__(self, root: str | os.PathLike[str], *, create: bool = False, fsync: bool = True):
        path = Path(root)
        if create:
            path.mkdir(parents=True, exist_ok=True)
        elif not path.is_dir():
            raise StoreNotFound(f"local store directory does not exist: {path}")
        self._root = path.resolve()
        # fsync makes a stored backup survive power loss; restores to scratch space may skip it.
        self._fsync = fsync

    @property
    def root(self) -> Path:
        return self._root

    def describe(self) -> str:
        return f"local directory {self._root}"

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
            raise InvalidKey(f"key uses the reserved temporary-file prefix: {key!r}")
        return self._root.joinpath(*key.split("/"))

    def _check_inside(self, path: Path, key: str) -> None:
        # A symlink planted inside the root must not let a key read or write outside it.
        if not path.resolve().is_relative_to(self._root):
            raise InvalidKey(f"key resolves outside the store root: {key!r}")

    def put(self, key: str, data: bytes | bytearray | BinaryIO) -> None:
        path = self._path(key)
        self._check_inside(path.parent, key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise StorageError(
                f"cannot store {key!r} in {self.describe()}: a parent path is a file"
            ) from exc
        tmp = path.parent / f"{TMP_PREFIX}{uuid.uuid4().hex}"
        try:
            with open(tmp, "xb") as out:
                if isinstance(data, bytes | bytearray | memoryview):
                    out.write(data)
                elif (readinto := readinto_of(data)) is not None:
                    _copy_readinto(readinto, out)
                else:
                    shutil.copyfileobj(data, out, _COPY_BUFFER)
                if self._fsync:
                    out.flush()
                    os.fsync(out.fileno())
            try:
                os.replace(tmp, path)
            except IsADirectoryError as exc:
                raise StorageError(
                    f"cannot store {key!r} in {self.describe()}: a directory has that name"
                ) from exc
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def discard_temporary_files(self) -> int:
        """Remove the temporary files of writes that never reached their rename (a writer
        killed midway) anywhere under the root; returns how many. Only for a caller that knows
        no other writer works in this tree: a live writer's temporary file would go too."""
        removed = 0
        for directory, _subdirectories, names in os.walk(self._root):  # never follows symlinks
            for name in names:
                if name.startswith(TMP_PREFIX):
                    (Path(directory) / name).unlink(missing_ok=True)
                    removed += 1
        return removed

    def get(self, key: str) -> bytes:
        with self.open(key) as stream:
            return stream.read()

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        self._check_inside(path, key)
        try:
            # The caller owns the stream and closes it (it is a context manager).
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(f"no object {key!r} in {self.describe()}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return _info(key, st)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        # Walk only the directory the prefix names, then filter by string prefix like S3 does.
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if directory:
            validate_key(directory)
        start = self._root.joinpath(*directory.split("/")) if directory else self._root
        found: list[ObjectInfo] = []
        self._walk(start, directory, prefix, found, temporary=False)
        found.sort(key=lambda info: info.key)
        yield from found

    def _walk(
        self,
        path: Path,
        rel: str,
        prefix: str,
        found: builtins.list[ObjectInfo],
        *,
        temporary: bool,
    ) -> None:
        try:
            entries = list(os.scandir(path))
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in entries:
            key = f"{rel}/{entry.name}" if rel else entry.name
            # Symlinks are not followed: they could point outside the root or loop.
            if entry.is_symlink() or (entry.name.startswith(TMP_PREFIX) and not temporary):
                continue
            if entry.is_dir():
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    self._walk(Path(entry.path), key, prefix, found, temporary=temporary)
            elif entry.is_file() and key.startswith(prefix):
                found.append(_info(key, entry.stat()))

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        """Every file under the prefix, including the temporary files of writes a killed writer
        never finished: they hold real (encrypted) bytes, so a deletion must see, remove and
        verify them like any object. Plain `list` hides them from readers."""
        directory = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if directory:
            validate_key(directory)
        start = self._root.joinpath(*directory.split("/")) if directory else self._root
        found: list[ObjectInfo] = []
        self._walk(start, directory, prefix, found, temporary=True)
        found.sort(key=lambda info: info.key)
        for info in found:
            yield ObjectVersion(
                key=info.key,
                version_id=NULL_VERSION,
                is_delete_marker=False,
                size=info.size,
                last_modified=info.mtime,
            )

    def delete_versions(self, items: Iterable[tuple[str, str | None]]) -> DeleteResult:
        result = DeleteResult()
        for key, version_id in items:
            if version_id not in (None, NULL_VERSION):
                result.errors.append(
                    DeleteError(key, version_id, "NoSuchVersion", "local files have one version")
                )
                continue
            try:
                # A deletion may name a leftover temporary file (see list_versions).
                validate_key(key)
                path = self._root.joinpath(*key.split("/"))
                self._check_inside(path.parent, key)
                path.unlink(missing_ok=True)
            except (InvalidKey, OSError) as exc:
                result.errors.append(DeleteError(key, version_id, type(exc).__name__, str(exc)))
                continue
            self._prune_empty_parents(path.parent)
            result.deleted.append((key, version_id))
        return result

    def _prune_empty_parents(self, directory: Path) -> None:
        # Empty directories are not objects; removing them keeps a post-deletion listing of the
        # local medium truly empty.
        while directory != self._root and directory.is_relative_to(self._root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent
