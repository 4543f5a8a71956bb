"""A format-2 snapshot's file list, stored as blobs (segments) in the repository's packs.

The manifest object then names only the segments. Entries are sorted by path and cut into
segments where a keyed hash of the path says so (about one cut per 256 files, at most 4,096 per
segment): the cuts depend on the paths alone, so a changed file rewrites its own segment and an
added or removed one at most its neighbours'. Unchanged segments are the same bytes, hence the
same blob id, and are not stored again: a snapshot of 20,000 files after one edit adds a few
kilobytes of file list, not the whole list again. Loading parses one segment at a time.
"""

from __future__ import annotations

import hmac
import json
from collections import deque
from collections.abc import Callable, Iterator, Sequence

from backups.engine.crypto import DatasetKeys, chunk_id
from backups.engine.errors import EngineError, ManifestCorrupt
from backups.engine.manifest import FileEntry, Manifest, entry_doc, entry_from_doc
from backups.engine.packs import PackIndex, blob_get, load_pack_index
from backups.storage import ObjectNotFound, ObjectStore

_CUT_ONE_IN = 256
_MAX_ENTRIES = 4096


def _cut_after(keys: DatasetKeys, path: str) -> bool:
    digest = hmac.digest(keys.chunk_id_key, b"segment-cut:" + path.encode(), "sha256")
    return int.from_bytes(digest[:4], "big") % _CUT_ONE_IN == 0


class ParentList:
    """A parent snapshot's file list read forward, one segment at a time, for a backup that
    walks the source in the same (path) order: `lookup` finds the parent's entry of each path
    and `matching` names a segment the new list repeats. Segments stay in memory only between
    the writer's position and the lookup's (a bounded window apart), never the whole list.

    A segment that cannot be read ends the parent's use from there on: the files after it are
    read again (as with an unreadable parent), never lost."""

    def __init__(self, segments: Iterator[tuple[str, Sequence[FileEntry]]]) -> None:
        self._segments = segments
        self._retained: deque[tuple[str, Sequence[FileEntry]]] = deque()
        self._current: Sequence[FileEntry] = ()
        self._position = 0
        self._ended = False

    @classmethod
    def empty(cls) -> ParentList:
        return cls(iter(()))

    def lookup(self, path: str) -> FileEntry | None:
        """The parent's entry for `path`; paths must be asked in increasing order."""
        while True:
            current = self._current
            while self._position < len(current) and current[self._position].path < path:
                self._position += 1
            if self._position < len(current):
                found = current[self._position]
                return found if found.path == path else None
            if not self._advance():
                return None

    def _advance(self) -> bool:
        if self._ended:
            return False
        try:
            sid, entries = next(self._segments)
        except StopIteration:
            self._ended = True
            return False
        except (EngineError, ObjectNotFound):
            self._ended = True  # see the class docstring: the rest is read again
            return False
        self._current, self._position = entries, 0
        if sid and entries:
            self._retained.append((sid, entries))
        return True

    def matching(self, group: Sequence[FileEntry]) -> str | None:
        """The id of the parent's segment holding exactly `group`, whose serialized form (and
        so blob id) is then the same; segments before the group are released."""
        first = group[0].path
        while self._retained and self._retained[0][1][-1].path < first:
            self._retained.popleft()
        for sid, entries in self._retained:
            if entries[0].path > first:
                return None
            if (
                entries[0].path == first
                and len(entries) == len(group)
                and all(a is b or a == b for a, b in zip(entries, group, strict=True))
            ):
                return sid
        return None


class FileListWriter:
    """Cuts a snapshot's entries, given in path order, into segments as they come (see the
    module docstring), so the list is never held whole. A segment equal to one of the parent's
    that every target holds is named by its id without being serialized again: a no-change
    rerun of 200,000 files builds no file list at all."""

    def __init__(
        self,
        keys: DatasetKeys,
        parent: ParentList,
        *,
        stored: Callable[[str], bool],
        store_blob: Callable[[str, bytes], None],
        reused: Callable[[], None],
    ) -> None:
        self._keys = keys
        self._parent = parent
        self._stored = stored
        self._store_blob = store_blob
        self._reused = reused
        self._group: list[FileEntry] = []
        self.segments: list[tuple[str, int]] = []
        self._last: str | None = None

    def add(self, entry: FileEntry) -> None:
        if self._last is not None and entry.path <= self._last:
            raise ValueError(f"file list out of order at {entry.path!r}")
        self._last = entry.path
        self._group.append(entry)
        if len(self._group) >= _MAX_ENTRIES or _cut_after(self._keys, entry.path):
            self._close()

    def finish(self) -> list[tuple[str, int]]:
        if self._group:
            self._close()
        return self.segments

    def _close(self) -> None:
        group, self._group = self._group, []
        sid = self._parent.matching(group)
        if sid is not None and self._stored(sid):
            self._reused()
        else:
            sid, data = _sealed_form(self._keys, [entry_doc(e) for e in group])
            self._store_blob(sid, data)
        self.segments.append((sid, len(group)))


def _sealed_form(keys: DatasetKeys, group: list[dict[str, object]]) -> tuple[str, bytes]:
    data = json.dumps({"files": group}, ensure_ascii=False, separators=(",", ":")).encode()
    return chunk_id(keys, data), data


def segment_entries(
    store: ObjectStore, base: str, keys: DatasetKeys, manifest_id: str, sid: str, index: PackIndex
) -> tuple[FileEntry, ...]:
    """One segment's entries; ManifestCorrupt if it is missing or does not parse."""
    location = index.blobs.get(sid)
    if location is None:
        raise ManifestCorrupt(manifest_id, f"file list segment {sid} is missing")
    try:
        doc = json.loads(blob_get(store, base, keys, sid, location))
        return tuple(entry_from_doc(f) for f in doc["files"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ManifestCorrupt(
            manifest_id, f"segment does not parse ({type(exc).__name__})"
        ) from None


def iter_segments(
    store: ObjectStore, base: str, keys: DatasetKeys, manifest: Manifest, index: PackIndex | None
) -> Iterator[tuple[str, tuple[FileEntry, ...]]]:
    """(segment id, entries) of the manifest's file list in path order, one segment fetched
    at a time, so a caller that streams holds a few thousand entries, not all of them. A
    manifest whose files are loaded (or inline) yields them as one run with an empty id."""
    if manifest.files_loaded or not manifest.segments:
        sizes = manifest.segment_sizes
        consistent = len(sizes) == len(manifest.segments) and sum(sizes) == len(manifest.files)
        if manifest.segments and consistent:
            start = 0
            for sid, count in zip(manifest.segments, sizes, strict=True):
                yield sid, manifest.files[start : start + count]
                start += count
            return
        if manifest.files:
            yield "", manifest.files
        return
    if index is None:
        index = load_pack_index(store, base, keys)
    for sid in manifest.segments:
        yield sid, segment_entries(store, base, keys, manifest.id, sid, index)


def files_load(
    store: ObjectStore, base: str, keys: DatasetKeys, manifest: Manifest, index: PackIndex | None
) -> tuple[FileEntry, ...]:
    """Fetch and parse every segment of the manifest; ManifestCorrupt if one is unreadable."""
    if not manifest.segments:
        return manifest.files
    files: list[FileEntry] = []
    for _, entries in iter_segments(store, base, keys, manifest, index):
        files.extend(entries)
    return tuple(files)
