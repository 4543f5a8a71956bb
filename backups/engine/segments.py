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
from collections.abc import Iterator, Sequence

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


def segments_of(keys: DatasetKeys, files: Sequence[FileEntry]) -> Iterator[tuple[str, bytes]]:
    """(blob id, plaintext) of each segment of `files` (sorted by path)."""
    group: list[dict[str, object]] = []
    for entry in files:
        group.append(entry_doc(entry))
        if len(group) >= _MAX_ENTRIES or _cut_after(keys, entry.path):
            yield _sealed_form(keys, group)
            group = []
    if group:
        yield _sealed_form(keys, group)


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
