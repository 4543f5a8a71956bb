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
from collections.abc import Callable, Iterator, Sequence

from backups.engine.crypto import DatasetKeys, chunk_id
from backups.engine.errors import ManifestCorrupt
from backups.engine.manifest import FileEntry, Manifest, entry_doc, entry_from_doc
from backups.engine.packs import PackIndex, blob_get, load_pack_index
from backups.storage import ObjectStore

_CUT_ONE_IN = 256
_MAX_ENTRIES = 4096


def _cut_after(keys: DatasetKeys, path: str) -> bool:
    digest = hmac.digest(keys.chunk_id_key, b"segment-cut:" + path.encode(), "sha256")
    return int.from_bytes(digest[:4], "big") % _CUT_ONE_IN == 0


def segments_of(
    keys: DatasetKeys,
    files: Sequence[FileEntry],
    parent: Manifest | None = None,
    stored: Callable[[str], bool] = lambda sid: False,
) -> Iterator[tuple[str, bytes | None, int]]:
    """(blob id, plaintext, entry count) of each segment of `files` (sorted by path).

    A run of entries identical to one of the parent's segments, which would be cut the same
    way, is named by that segment's id without being serialized again (plaintext None), if
    `stored` says every target holds it: a no-change rerun of 200,000 files then builds no
    file list at all."""
    reusable = _reusable(parent)
    group: list[dict[str, object]] = []
    i = 0
    while i < len(files):
        if not group and reusable:
            found = reusable.get(files[i].path)
            if found is not None and stored(found[0]) and _same(keys, files, i, found[1]):
                yield found[0], None, len(found[1])
                i += len(found[1])
                continue
        entry = files[i]
        i += 1
        group.append(entry_doc(entry))
        if len(group) >= _MAX_ENTRIES or _cut_after(keys, entry.path):
            yield *_sealed_form(keys, group), len(group)
            group = []
    if group:
        yield *_sealed_form(keys, group), len(group)


def _reusable(parent: Manifest | None) -> dict[str, tuple[str, Sequence[FileEntry]]]:
    """The parent's segments by their first path: (id, entries)."""
    if parent is None or not parent.segment_sizes:
        return {}
    sizes = parent.segment_sizes
    if len(sizes) != len(parent.segments) or sum(sizes) != len(parent.files):
        return {}
    found: dict[str, tuple[str, Sequence[FileEntry]]] = {}
    start = 0
    for sid, count in zip(parent.segments, sizes, strict=True):
        if count > 0:
            found[parent.files[start].path] = (sid, parent.files[start : start + count])
        start += count
    return found


def _same(keys: DatasetKeys, files: Sequence[FileEntry], i: int, old: Sequence[FileEntry]) -> bool:
    """Whether files[i:] starts with `old` and a segment starting at i would end after it."""
    end = i + len(old)
    if end > len(files) or any(
        a is not b and a != b for a, b in zip(files[i:end], old, strict=True)
    ):
        return False
    # Same paths from the same start: no cut inside. The cut after the last entry happens for
    # the same reason as in the parent, unless the parent's list simply ended there.
    return end == len(files) or len(old) >= _MAX_ENTRIES or _cut_after(keys, old[-1].path)


def _sealed_form(keys: DatasetKeys, group: list[dict[str, object]]) -> tuple[str, bytes]:
    data = json.dumps({"files": group}, ensure_ascii=False, separators=(",", ":")).encode()
    return chunk_id(keys, data), data


def files_load(
    store: ObjectStore, base: str, keys: DatasetKeys, manifest: Manifest, index: PackIndex | None
) -> tuple[FileEntry, ...]:
    """Fetch and parse every segment of the manifest; ManifestCorrupt if one is unreadable."""
    if not manifest.segments:
        return manifest.files
    if index is None:
        index = load_pack_index(store, base, keys)
    files: list[FileEntry] = []
    for sid in manifest.segments:
        location = index.blobs.get(sid)
        if location is None:
            raise ManifestCorrupt(manifest.id, f"file list segment {sid} is missing")
        try:
            doc = json.loads(blob_get(store, base, keys, sid, location))
            files.extend(entry_from_doc(f) for f in doc["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestCorrupt(
                manifest.id, f"segment does not parse ({type(exc).__name__})"
            ) from None
    return tuple(files)
