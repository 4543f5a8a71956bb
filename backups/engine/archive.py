"""Which objects a read of a repository needs, for stores whose cold content may sit in an
archive class (GLACIER, DEEP_ARCHIVE) and must be retrieved before it can be read.

Only file content can be cold: format-2 data packs (`data/`, written with `cold=True`) and
format-1 chunks (`chunks/`, which a lifecycle rule may have moved). Keys, indexes, manifests and
file-list packs stay in the default class, so a read can always learn what it needs without a
retrieval: that is what makes this question answerable before anything is retrieved.
"""

from __future__ import annotations

from collections.abc import Iterable

from backups.engine.crypto import DatasetKeys
from backups.engine.packs import DATA_PACK, data_prefix, load_pack_index, pack_object
from backups.engine.repository import Target, _load_manifest, chunk_object, chunks_prefix
from backups.engine.restore import _selected


def cold_objects(target: Target) -> set[str]:
    """Keys of the repository's file content that sit in an archive class (two listings; the
    listing names each object's class, so no HEAD is needed to know there is nothing to do)."""
    store, base = target
    return {
        info.key
        for prefix in (data_prefix(base), chunks_prefix(base))
        for info in store.list(prefix)
        if info.archived
    }


def objects_to_read(
    target: Target,
    data_key: bytes,
    manifest_ids: Iterable[str],
    *,
    path_prefix: str = "",
) -> list[str]:
    """The content objects (format-2 data packs, format-1 chunks) that restoring the files of
    these snapshots under `path_prefix` (all files when empty) reads, sorted. A blob no index
    lists is left out: the read itself reports it missing."""
    store, base = target
    keys = DatasetKeys.from_data_key(data_key)
    index = load_pack_index(store, base, keys)
    needed: set[str] = set()
    for manifest_id in manifest_ids:
        manifest = _load_manifest(store, base, keys, manifest_id, index)
        for entry in _selected(manifest.files, path_prefix):
            for cid in entry.chunks:
                if manifest.format == 1:
                    needed.add(chunk_object(base, cid))
                    continue
                location = index.blobs.get(cid)
                if location is not None and index.kinds.get(location.pack) == DATA_PACK:
                    needed.add(pack_object(base, location.pack))
    return sorted(needed)
