"""Take a snapshot in format 2: content-defined chunks, compressed and encrypted, in packs.

Reader threads stream each changed file through the dataset's chunker, hash the file and name
each chunk; a chunk some target lacks is compressed and sealed in the reader thread (zstd and
AES-GCM release the GIL) and appended to the open pack of the targets that need it. A full
pack goes to uploader threads, which store it and then its index on each of those targets. At
most a few packs wait for upload (`run`). The listing is walked once, in path order, and the
file list written as it goes (`stream`), so memory does not grow with the file count. The manifest
is written last, once every pack is stored: an interrupted run leaves no snapshot, and the packs
it completed are found through their indexes and reused next time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import NamedTuple

from backups.engine.backup import (
    DEFAULT_CHUNK_SIZE,
    BackupResult,
    ProgressCallback,
    backup_fixed,
    source_empty,
    source_items,
)
from backups.engine.chunker import AVERAGE_SIZE
from backups.engine.crypto import DatasetKeys
from backups.engine.manifest import Manifest, new_manifest_id
from backups.engine.packed_backup.run import Cancelled, PackedRun
from backups.engine.packed_backup.stream import (
    MAX_READERS,
    OutOfOrder,
    parent_list,
    stream,
)
from backups.engine.packs import (
    DEFAULT_COMPRESSION_LEVEL,
    DEFAULT_PACK_SIZE,
    BlobTable,
    PackIndex,
    load_pack_index,
)
from backups.engine.repository import Target, require_repository, store_manifest
from backups.engine.segments import FileListWriter, ParentList
from backups.storage import ObjectInfo, ObjectStore

DEFAULT_THREADS = 8


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
    parent's file list does), so a run reads every index once, not twice; the run adds what it
    stores to them.

    `parent` may be read without its file list (`load_manifest(..., files=False)`, as a
    scheduled run does): its segments are then read one at a time as the walk reaches them.
    The result's manifest likewise carries no file list (`file_count` says how many).
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

    if indexes is not None and len(indexes) != len(repos):
        raise ValueError("one pack index per target, or none")
    loaded = list(
        indexes or [load_pack_index(repo.store, repo.base, keys, packs=False) for repo in repos]
    )
    # The run adds what it stores to these dicts: the indexes stay true, and are not copied.
    present = [index.blobs for index in loaded]
    estimate = max(0, parent.total_size) if parent is not None else 0
    files_before = parent_list(parent, repos, loaded, keys)
    skipped: list[str] = []
    declined: list[str] = []
    settings = _PassSettings(threads, pack_size, compression_level, progress, estimate)
    try:
        run, segments = _backup_pass(
            source,
            source_items(source, prefix, skipped, declined),
            repos,
            present,
            keys,
            files_before,
            settings,
        )
    except OutOfOrder:
        # A store that does not list in key order (S3 Express directory buckets do not promise
        # it): sort the listing in memory and go again. Packs the first pass stored are in
        # `present` and are not stored twice.
        skipped.clear()
        declined.clear()
        listing = sorted(source_items(source, prefix, skipped, declined), key=lambda item: item[0])
        files_before = parent_list(parent, repos, loaded, keys)
        run, segments = _backup_pass(source, listing, repos, present, keys, files_before, settings)
    run.stats.skipped_keys = skipped
    if run.stats.files_seen == 0 and not allow_empty:
        raise source_empty(source, source_prefix, declined)

    created = now or datetime.now(UTC)
    manifest = Manifest(
        id=new_manifest_id(created),
        created=created,
        source_prefix=source_prefix,
        chunk_size=AVERAGE_SIZE,
        parent_id=parent.id if parent is not None else None,
        files=(),
        format=2,
        segments=tuple(sid for sid, _ in segments),
        segment_sizes=tuple(count for _, count in segments),
        listed_files=run.stats.files_seen if segments else None,
        listed_bytes=run.stats.bytes_seen if segments else None,
    )
    for repo in repos:
        store_manifest(repo.store, repo.base, keys, manifest)
    return BackupResult(manifest_id=manifest.id, manifest=manifest, stats=run.stats)


class _PassSettings(NamedTuple):
    threads: int
    pack_size: int
    level: int
    progress: ProgressCallback | None
    estimate: int


def _backup_pass(
    source: ObjectStore,
    items: Iterable[tuple[str, ObjectInfo]],
    repos: Sequence[Target],
    present: list[BlobTable],
    keys: DatasetKeys,
    parent: ParentList,
    settings: _PassSettings,
) -> tuple[PackedRun, list[tuple[str, int]]]:
    """Store every listed file's new blobs and the file list; returns the run and the list's
    segments (id, entry count). Raises the first error of any worker."""
    with ThreadPoolExecutor(settings.threads, thread_name_prefix="backup-upload") as uploaders:
        run = PackedRun(
            keys,
            repos,
            present,
            pack_size=settings.pack_size,
            level=settings.level,
            uploaders=uploaders,
            progress=settings.progress,
            bytes_total=settings.estimate,
        )
        # The file list goes into packs of its own, before the manifest that names it.
        writer = FileListWriter(
            keys,
            parent,
            stored=run.stored_everywhere,
            store_blob=lambda sid, data: run.add(sid, data, "list"),
            reused=run.count_reused,
        )
        segments: list[tuple[str, int]] = []
        try:
            stream(
                run,
                source,
                items,
                parent,
                writer,
                min(settings.threads, MAX_READERS),
                settings.estimate,
            )
            segments = writer.finish()
            run.flush()
        except Cancelled:
            pass
        except OutOfOrder:
            run.failed.set()  # drop what is queued; the caller goes again in order
            raise
        except BaseException as exc:
            run.fail(exc)
            raise
        # Leaving the `with` waits for every queued upload.
    if run.error is not None:
        raise run.error
    if run.failed.is_set():  # never a snapshot whose packs may not all be stored
        raise RuntimeError("the backup stopped without recording why")
    return run, segments
