"""Take a snapshot in format 2: content-defined chunks, compressed and encrypted, in packs.

Reader threads stream each changed file through the dataset's chunker, hash the file and name
each chunk; a chunk some target lacks is compressed and sealed in the reader thread (zstd and
AES-GCM release the GIL) and appended to the open pack of the targets that need it. A full
pack goes to uploader threads, which store it and then its index on each of those targets. At
most a few packs wait for upload, so memory stays bounded whatever the file sizes. The manifest
is written last, once every pack is stored: an interrupted run leaves no snapshot, and the packs
it completed are found through their indexes and reused next time.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import BinaryIO, cast

from backups.engine.backup import (
    DEFAULT_CHUNK_SIZE,
    BackupResult,
    ProgressCallback,
    RunState,
    _source_listing,
    backup_fixed,
)
from backups.engine.chunker import AVERAGE_SIZE, MIN_SIZE, Chunker
from backups.engine.crypto import DatasetKeys, chunk_id
from backups.engine.filestream import PrefixedStream
from backups.engine.manifest import FileEntry, Manifest, new_manifest_id
from backups.engine.packs import (
    DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_PACK_SIZE,
    BlobLocation,
    PackContents,
    PackIndex,
    load_pack_index,
    seal_blob,
    store_pack,
)
from backups.engine.repository import Target, require_repository, store_manifest
from backups.engine.segments import segments_of
from backups.storage import ObjectInfo, ObjectStore, read_full

DEFAULT_THREADS = 8
# Full packs waiting for (or in) upload: each holds up to a pack's worth of sealed bytes. Three
# keep the uploads busy (the bench's full backup runs at 1.5 x a raw parallel put) at 16 MiB
# less memory than four.
_PACKS_IN_FLIGHT = 3
# A file's new blobs enter the shared open pack in runs of about this many sealed bytes, so
# they lie back to back and a restore reads a run with one ranged GET instead of one per blob:
# readers working in parallel would otherwise interleave their files' blobs in every pack.
# Held per reader: 4 MiB is one ranged GET of a few blobs (moto: ~17 ms, against ~13 ms for
# one 1 MiB blob), at half the memory of 8.
_RUN_BYTES = 4 * 1024 * 1024


class _Cancelled(Exception):
    """A worker noticed that another one failed and stopped early."""


# (blob id, sealed bytes, plaintext length, compressed)
_Sealed = tuple[str, bytes, int, bool]


class _BlobRun:
    """One file's sealed blobs, for the same targets, not yet in a pack."""

    def __init__(self) -> None:
        self.needs: tuple[int, ...] = ()
        self.blobs: list[_Sealed] = []
        self.size = 0


class _PackedRun(RunState):
    """State shared by the readers and uploaders of one format-2 backup."""

    def __init__(
        self,
        keys: DatasetKeys,
        targets: Sequence[Target],
        present: list[dict[str, BlobLocation]],
        *,
        pack_size: int,
        level: int,
        uploaders: ThreadPoolExecutor,
        progress: ProgressCallback | None,
        bytes_total: int,
    ) -> None:
        super().__init__(progress, bytes_total)
        self.keys = keys
        self.targets = targets
        self.present = present
        self.pack_size = pack_size
        self.level = level
        self.uploaders = uploaders
        self.chunker = Chunker(keys.chunker_seed)
        self.scheduled: set[str] = set()
        # One open pack per kind (file data, or file lists) and set of targets that need its
        # blobs (normally just one set: all). File lists get packs of their own, so damage to
        # a data pack loses those files, never the list of what a snapshot holds.
        self.open_packs: dict[tuple[str, tuple[int, ...]], PackContents] = {}
        # Full packs handed to the uploaders and not yet stored; readers wait for room before
        # adding more (see _append), so no reader sits on a full pack of its own meanwhile.
        self.outstanding = 0
        self.room = threading.Condition(self.lock)
        self.bytes_stored = 0

    def read_file(self, source: ObjectStore, info: ObjectInfo, path: str) -> FileEntry:
        digest = hashlib.sha256()
        ids: list[str] = []
        size = 0
        with source.open(info.key) as stream:
            if info.size < MIN_SIZE:
                # Below the minimum a file is one chunk whatever its content: no chunker needed.
                whole = read_full(stream, MIN_SIZE)
                pieces = iter([whole] if whole else []) if len(whole) < MIN_SIZE else None
                if pieces is None:  # the file grew since it was listed: chunk it after all
                    pieces = self.chunker.chunks(cast(BinaryIO, PrefixedStream(whole, stream)))
            else:
                pieces = self.chunker.chunks(stream)
            run = _BlobRun()
            for data in pieces:
                if self.failed.is_set():
                    raise _Cancelled
                digest.update(data)
                bid = chunk_id(self.keys, data)
                ids.append(bid)
                size += len(data)
                self.add(bid, data, run=run)
            self.end_run(run)
        with self.lock:
            self.stats.files_read += 1
            self.stats.bytes_read += size
        return FileEntry(path, size, info.mtime, info.etag, digest.hexdigest(), tuple(ids))

    def add(self, bid: str, data: bytes, kind: str = "data", run: _BlobRun | None = None) -> None:
        """Seal a blob some target lacks and put it in the open pack of the targets that need
        it, or first in `run` (one file's blobs, appended together)."""
        with self.lock:
            needs = tuple(i for i, have in enumerate(self.present) if bid not in have)
            fresh = bool(needs) and bid not in self.scheduled
            if fresh:
                self.scheduled.add(bid)
            else:
                self.stats.chunks_deduplicated += 1
        if not fresh:
            if kind == "data":
                self.advance(len(data))  # already stored: done now
            return
        sealed, compressed = seal_blob(self.keys, bid, data, self.level)
        blob = (bid, sealed, len(data), compressed)
        if run is None:
            self._append(kind, needs, [blob])
            return
        if run.blobs and run.needs != needs:
            self.end_run(run)
        run.needs = needs
        run.blobs.append(blob)
        run.size += len(sealed)
        if run.size >= _RUN_BYTES:
            self.end_run(run)

    def stored_everywhere(self, bid: str) -> bool:
        with self.lock:
            return all(bid in have for have in self.present)

    def count_reused(self) -> None:
        with self.lock:
            self.stats.chunks_deduplicated += 1

    def end_run(self, run: _BlobRun) -> None:
        if run.blobs:
            self._append("data", run.needs, run.blobs)
        run.blobs = []
        run.size = 0

    def _append(self, kind: str, needs: tuple[int, ...], blobs: list[_Sealed]) -> None:
        # All under one hold of the lock: the blobs lie back to back (a pack that fills up
        # midway is sent, and the rest starts the next one). Back-pressure first: while enough
        # full packs are on their way, readers wait here, holding at most their current run.
        full = []
        with self.room:
            while self.outstanding >= _PACKS_IN_FLIGHT:
                if self.failed.is_set():
                    raise _Cancelled
                self.room.wait(timeout=0.5)
            for bid, sealed, raw_length, compressed in blobs:
                pack = self.open_packs.setdefault((kind, needs), PackContents.empty())
                pack.add(bid, sealed, raw_length, compressed)
                self.stats.chunks_uploaded += 1
                self.stats.bytes_uploaded += raw_length
                if pack.size >= self.pack_size:
                    full.append(self.open_packs.pop((kind, needs)))
                    self.outstanding += 1
        for pack in full:
            self.uploaders.submit(self._upload, kind, needs, pack)

    def _upload(self, kind: str, needs: tuple[int, ...], pack: PackContents) -> None:
        try:
            if self.failed.is_set():
                return
            for index in needs:
                target = self.targets[index]
                _, blobs = store_pack(target.store, target.base, self.keys, pack, kind=kind)
                with self.lock:
                    self.present[index].update(blobs)
                    self.bytes_stored += pack.size
            if kind == "data":
                # Progress counts what is stored on every target that needs it, not what is read.
                self.advance(sum(entry[3] for entry in pack.entries))
        except BaseException as exc:
            self.fail(exc)
        finally:
            with self.room:
                self.outstanding -= 1
                self.room.notify_all()

    def flush(self) -> None:
        """Send the packs still open (the last, partly filled ones)."""
        with self.room:
            remaining = [(key, pack) for key, pack in self.open_packs.items() if pack.entries]
            self.open_packs.clear()
            self.outstanding += len(remaining)
        for (kind, needs), pack in remaining:
            self.uploaders.submit(self._upload, kind, needs, pack)

    def read_task(self, source: ObjectStore, info: ObjectInfo, path: str) -> FileEntry | None:
        try:
            return self.read_file(source, info, path)
        except _Cancelled:
            return None
        except BaseException as exc:
            self.fail(exc)
            return None


def _read_all(
    run: _PackedRun,
    source: ObjectStore,
    to_read: list[tuple[str, ObjectInfo]],
    entries: dict[str, FileEntry],
    threads: int,
) -> None:
    """Read every file with `threads` workers pulling from one queue: a future per file would
    cost about a kilobyte each, hundreds of megabytes for a dataset of 200,000 files."""
    queue = iter(to_read)
    lock = threading.Lock()

    def work() -> None:
        while not run.failed.is_set():
            with lock:
                item = next(queue, None)
            if item is None:
                return
            path, info = item
            entry = run.read_task(source, info, path)
            if entry is not None:
                with lock:
                    entries[entry.path] = entry

    with ThreadPoolExecutor(threads, thread_name_prefix="backup-read") as readers:
        for future in [readers.submit(work) for _ in range(threads)]:
            future.result()


# Readers hash, compress and seal (CPU work that releases the GIL); more of them than this adds
# memory (a chunking window each) rather than speed. Uploads use every thread asked for.
_MAX_READERS = 5


def _unchanged(
    entry: FileEntry | None, info: ObjectInfo, present: list[dict[str, BlobLocation]]
) -> bool:
    return (
        entry is not None
        and entry.size == info.size
        and entry.mtime == info.mtime
        and entry.etag == info.etag
        and all(bid in have for have in present for bid in entry.chunks)
    )


def backup(
    source: ObjectStore,
    source_prefix: str,
    targets: Sequence[tuple[ObjectStore, str]],
    data_key: bytes,
    parent: Manifest | None = None,
    *,
    progress: ProgressCallback | None = None,
    threads: int = DEFAULT_THREADS,
    pack_size: int = DEFAULT_PACK_SIZE,
    compression_level: int = DEFAULT_COMPRESSION_LEVEL,
    now: datetime | None = None,
    allow_empty: bool = False,
    repository_format: int = 2,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    max_in_flight_bytes: int | None = None,
    indexes: Sequence[PackIndex] | None = None,
) -> BackupResult:
    """Back up every object under `source_prefix` to every target and record one snapshot.

    Rules: files matching the parent manifest (size, mtime, etag) whose blobs every target
    holds are not re-read; blobs a target already holds are not stored again; the manifest is
    written only after every pack (and its index) is stored on every target; an empty source is
    refused unless `allow_empty`. Keys that could not be restored safely ('..', empty parts)
    and entries the source declines (symlinks, FIFOs, sockets, devices) are skipped and
    reported in `stats.skipped_keys`. `progress(bytes_done, bytes_total)` is serialized.
    Storage errors propagate with their own types; no snapshot is recorded.

    `repository_format=1` writes the fixed-chunk format older releases wrote (with
    `chunk_size` and `max_in_flight_bytes`): only for tests and the bench. `indexes`, one per
    target, are the targets' pack indexes when the caller has just read them (loading the
    parent's file list does), so a run reads every index once, not twice.
    """
    if repository_format == 1:
        return backup_fixed(
            source,
            source_prefix,
            targets,
            data_key,
            parent,
            progress=progress,
            threads=threads,
            chunk_size=chunk_size,
            max_in_flight_bytes=max_in_flight_bytes,
            now=now,
            allow_empty=allow_empty,
        )
    if repository_format != 2:
        raise ValueError(f"unknown repository format {repository_format}")
    if threads < 1 or pack_size < 1 or not 0 <= compression_level <= 22:
        raise ValueError("threads and pack_size must be positive, compression level 0-22")
    keys = DatasetKeys.from_data_key(data_key)
    repos = [Target(store, base) for store, base in targets]
    if not repos:
        raise ValueError("at least one target is required")
    for repo in repos:
        require_repository(repo.store, repo.base)
    prefix = source_prefix.strip("/") + "/" if source_prefix.strip("/") else ""

    listing, skipped = _source_listing(source, prefix, source_prefix, allow_empty=allow_empty)
    if indexes is not None and len(indexes) != len(repos):
        raise ValueError("one pack index per target, or none")
    loaded = indexes or [load_pack_index(repo.store, repo.base, keys) for repo in repos]
    present = [dict(index.blobs) for index in loaded]
    previous = (
        {e.path: e for e in parent.files} if parent is not None and parent.format == 2 else {}
    )
    entries: dict[str, FileEntry] = {}
    to_read: list[tuple[str, ObjectInfo]] = []
    for path, info in listing:
        old = previous.get(path)
        if old is not None and _unchanged(old, info, present):
            entries[path] = old
        else:
            to_read.append((path, info))
    to_read.sort(key=lambda item: item[1].size, reverse=True)
    bytes_total = sum(info.size for _, info in listing)

    with ThreadPoolExecutor(threads, thread_name_prefix="backup-upload") as uploaders:
        run = _PackedRun(
            keys,
            repos,
            present,
            pack_size=pack_size,
            level=compression_level,
            uploaders=uploaders,
            progress=progress,
            bytes_total=bytes_total,
        )
        run.stats.skipped_keys = skipped
        run.stats.files_seen = len(listing)
        run.stats.bytes_seen = bytes_total
        run.stats.files_reused = len(entries)
        try:
            run.advance(sum(entry.size for entry in entries.values()))
            _read_all(run, source, to_read, entries, min(threads, _MAX_READERS))
            files = tuple(entries[path] for path in sorted(entries))
            segments: list[tuple[str, int]] = []
            if not run.failed.is_set():
                # The file list goes into packs too, before the manifest that names it.
                for sid, data, count in segments_of(keys, files, parent, run.stored_everywhere):
                    segments.append((sid, count))
                    if data is None:
                        run.count_reused()
                    else:
                        run.add(sid, data, "list")
                run.flush()
        except _Cancelled:
            pass
        except BaseException as exc:
            run.fail(exc)
            raise
        # Leaving the `with` waits for every queued upload.
    if run.error is not None:
        raise run.error

    created = now or datetime.now(UTC)
    manifest = Manifest(
        id=new_manifest_id(created),
        created=created,
        source_prefix=source_prefix,
        chunk_size=AVERAGE_SIZE,
        parent_id=parent.id if parent is not None else None,
        files=files,
        format=2,
        segments=tuple(sid for sid, _ in segments),
        segment_sizes=tuple(count for _, count in segments),
    )
    for repo in repos:
        store_manifest(repo.store, repo.base, keys, manifest)
    return BackupResult(manifest_id=manifest.id, manifest=manifest, stats=run.stats)
