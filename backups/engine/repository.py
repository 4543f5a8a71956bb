"""Repository layout on one target, and the operations on its key and snapshots.

```
<base>/key                       the dataset key, wrapped by the master key
<base>/chunks/<id>               encrypted content-addressed chunks
<base>/snapshots/<time>-<uuid>   encrypted manifests
```
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from backups.engine.crypto import DatasetKeys, unwrap_data_key, wrap_data_key
from backups.engine.errors import (
    KeyUnwrapFailed,
    ManifestCorrupt,
    RepositoryAlreadyInitialized,
    RepositoryNotInitialized,
    SnapshotNotFound,
)
from backups.engine.manifest import FileEntry, Manifest, manifest_time, open_manifest, seal_manifest
from backups.engine.packs import PackIndex, load_pack_index
from backups.engine.segments import files_load, iter_segments, segment_entries
from backups.storage import ObjectNotFound, ObjectStore, join_key

KEY_NAME = "key"
CHUNKS_DIR = "chunks"
SNAPSHOTS_DIR = "snapshots"


class Target(NamedTuple):
    """One repository: a store and the base prefix of the dataset inside it."""

    store: ObjectStore
    base: str


class SnapshotRef(NamedTuple):
    """A snapshot as listed: its id and creation time (UTC), without decrypting it."""

    id: str
    time: datetime


def key_object(base: str) -> str:
    return join_key(base, KEY_NAME)


def chunks_prefix(base: str) -> str:
    return join_key(base, CHUNKS_DIR) + "/"


def chunk_object(base: str, chunk_id: str) -> str:
    return join_key(base, f"{CHUNKS_DIR}/{chunk_id}")


def snapshots_prefix(base: str) -> str:
    return join_key(base, SNAPSHOTS_DIR) + "/"


def snapshot_object(base: str, manifest_id: str) -> str:
    return join_key(base, f"{SNAPSHOTS_DIR}/{manifest_id}")


def init_repository(
    store: ObjectStore,
    base: str,
    master_key: bytes,
    data_key: bytes,
    *,
    context: bytes = b"",
    earlier_keys: Sequence[bytes] = (),
) -> bool:
    """Store the data key wrapped by `master_key`; the first write to a target, before any
    chunk. Returns True when it wrote the key object.

    Idempotent for the same data key; refuses to replace a different key, because every chunk
    already on the target would become unreadable. A key object wrapped by one of
    `earlier_keys` (the wrapping a target used before) is wrapped again by `master_key`.
    """
    if store.head(key_object(base)) is not None:
        sealed = store.get(key_object(base))
        for number, wrapping in enumerate((master_key, *earlier_keys)):
            try:
                current = unwrap_data_key(wrapping, sealed, context=context)
            except KeyUnwrapFailed:
                continue
            if current != data_key:
                break
            if number == 0:
                return False
            store.put(key_object(base), wrap_data_key(master_key, data_key, context=context))
            return True
        raise RepositoryAlreadyInitialized(
            f"{store.describe()} already holds a different key at {key_object(base)!r}"
        )
    store.put(key_object(base), wrap_data_key(master_key, data_key, context=context))
    return True


def load_data_key(
    store: ObjectStore, base: str, master_key: bytes, *, context: bytes = b""
) -> bytes:
    """Read and unwrap the dataset key of a repository."""
    try:
        wrapped = store.get(key_object(base))
    except ObjectNotFound:
        raise RepositoryNotInitialized(
            f"no repository key at {key_object(base)!r} in {store.describe()}"
        ) from None
    return unwrap_data_key(master_key, wrapped, context=context)


def require_repository(store: ObjectStore, base: str) -> None:
    """Refuse to write chunks where no wrapped key exists: they could never be decrypted."""
    if store.head(key_object(base)) is None:
        raise RepositoryNotInitialized(
            f"no repository key at {key_object(base)!r} in {store.describe()}; "
            "initialize the repository first"
        )


def list_chunks(store: ObjectStore, base: str) -> dict[str, int]:
    """Chunk id -> stored (encrypted) size, from one listing of the chunks prefix."""
    prefix = chunks_prefix(base)
    return {info.key[len(prefix) :]: info.size for info in store.list(prefix)}


def list_snapshots(store: ObjectStore, base: str) -> list[SnapshotRef]:
    """Every snapshot on the target, oldest first. Only complete snapshots exist as objects."""
    prefix = snapshots_prefix(base)
    refs = []
    for info in store.list(prefix):
        manifest_id = info.key[len(prefix) :]
        if "/" in manifest_id:
            continue
        refs.append(SnapshotRef(manifest_id, manifest_time(manifest_id)))
    refs.sort(key=lambda ref: (ref.time, ref.id))
    return refs


def load_manifest(
    store: ObjectStore,
    base: str,
    data_key: bytes,
    manifest_id: str,
    *,
    index: PackIndex | None = None,
    files: bool = True,
) -> Manifest:
    """Fetch, decrypt and parse one snapshot's manifest; `index`, the target's pack index when
    the caller has read it already (a backup reads it anyway: once is enough). `files=False`
    leaves a format-2 file list in the repository (`files_loaded` is then False): a backup's
    parent is streamed segment by segment, never held whole beside the new list."""
    keys = DatasetKeys.from_data_key(data_key)
    return _load_manifest(store, base, keys, manifest_id, index, files=files)


def _load_manifest(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    manifest_id: str,
    index: PackIndex | None = None,
    *,
    files: bool = True,
) -> Manifest:
    if not manifest_id or "/" in manifest_id or manifest_id.startswith("."):
        raise SnapshotNotFound(f"not a snapshot id: {manifest_id!r}")
    try:
        sealed = store.get(snapshot_object(base, manifest_id))
    except ObjectNotFound:
        raise SnapshotNotFound(
            f"no snapshot {manifest_id!r} at {base!r} in {store.describe()}"
        ) from None
    manifest = open_manifest(keys, manifest_id, sealed)
    if manifest.segments and files:
        loaded = files_load(store, base, keys, manifest, index)
        if manifest.listed_files is not None and len(loaded) != manifest.listed_files:
            raise ManifestCorrupt(manifest_id, "its file list does not hold the files it counts")
        manifest = replace(manifest, files=loaded, listed_files=None, listed_bytes=None)
    return manifest


def _head(
    store: ObjectStore, base: str, data_key: bytes, manifest_id: str
) -> tuple[DatasetKeys, PackIndex, Manifest]:
    """The keys, the blob locations and the manifest without its file list: what reading the
    list a segment at a time starts from."""
    keys = DatasetKeys.from_data_key(data_key)
    index = load_pack_index(store, base, keys, packs=False)
    return keys, index, _load_manifest(store, base, keys, manifest_id, index, files=False)


def snapshot_files(
    store: ObjectStore, base: str, data_key: bytes, manifest_id: str
) -> Iterator[FileEntry]:
    """Every file of a snapshot in path order, its list read one segment at a time (a drill's
    check of 200,000 restored files holds one segment of entries). Errors of the manifest or
    of a segment are raised as they are reached."""
    keys, index, manifest = _head(store, base, data_key, manifest_id)
    for _, entries in iter_segments(store, base, keys, manifest, index):
        yield from entries


def find_entry(
    store: ObjectStore, base: str, data_key: bytes, manifest_id: str, path: str
) -> FileEntry | None:
    """One file's entry in a snapshot, reading its file list segment by segment (in path
    order) only as far as that path: a download never holds the whole list."""
    keys, index, manifest = _head(store, base, data_key, manifest_id)
    if manifest.files_loaded:
        return next((e for e in manifest.files if e.path == path), None)
    for sid in manifest.segments:
        entries = segment_entries(store, base, keys, manifest_id, sid, index)
        if entries and entries[-1].path >= path:
            return next((e for e in entries if e.path == path), None)
    return None


def store_manifest(store: ObjectStore, base: str, keys: DatasetKeys, manifest: Manifest) -> None:
    """Write the manifest: the single step that makes a snapshot exist."""
    store.put(snapshot_object(base, manifest.id), seal_manifest(keys, manifest))


def referenced_ids(
    store: ObjectStore, base: str, keys: DatasetKeys, ids: Iterable[str]
) -> tuple[set[str], set[str]]:
    """(format-1 chunks, format-2 blobs, file-list segments included) the snapshots `ids`
    need. Each manifest is read without its file list and the segments one at a time; one
    that several snapshots share (the same id holds the same entries) is read once, so thirty
    daily snapshots of 200,000 mostly unchanged files read about one list, never thirty held
    together. Any unreadable manifest or segment raises: callers (garbage collection) must not
    act on a partial view."""
    chunks: set[str] = set()
    blobs: set[str] = set()
    read: set[str] = set()
    index: PackIndex | None = None
    for manifest_id in ids:
        if index is None:
            # Read once for all of them (format-2 file lists live in packs).
            index = load_pack_index(store, base, keys, packs=False)
        manifest = _load_manifest(store, base, keys, manifest_id, index, files=False)
        if manifest.id != manifest_id:
            raise ManifestCorrupt(manifest_id, "id mismatch")
        found = chunks if manifest.format == 1 else blobs
        found.update(manifest.segments)
        if manifest.files_loaded:  # format 1, or a list kept inline
            for entry in manifest.files:
                found.update(entry.chunks)
            continue
        for sid in manifest.segments:
            if sid in read:
                continue
            read.add(sid)
            for entry in segment_entries(store, base, keys, manifest_id, sid, index):
                found.update(entry.chunks)
    return chunks, blobs
