"""Garbage collection of format 2 packs: delete packs nothing references, repack the ones that
are mostly unreferenced.

Order makes a crash harmless at every step: the blobs a kept snapshot needs are copied into new
packs, and each new pack's index is stored, before any old index or pack is deleted; then each
old pack loses its index first and its data second. Interrupted anywhere, the repository still
holds every needed blob (perhaps twice, which readers tolerate), and what is left over is an
unreferenced pack or an index-less pack, both removed by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from backups.engine.crypto import DatasetKeys
from backups.engine.errors import EngineError
from backups.engine.packs import (
    DATA_PACK,
    DEFAULT_PACK_SIZE,
    PackContents,
    data_prefix,
    index_object,
    index_prefix,
    load_pack_index,
    open_blob,
    pack_object,
    store_pack,
)
from backups.storage import DeleteResult, ObjectStore

# A pack is repacked once less than this fraction of its bytes is still referenced (restic's
# `--max-unused` says the same from the other side): below it, the unreferenced bytes cost
# more than the copying does.
DEFAULT_MIN_USED = 0.5


class IndexUnreadable(EngineError):
    """A pack index does not authenticate: nothing is deleted while a pack's content is unknown."""


@dataclass
class PackCollectResult:
    packs_total: int = 0
    packs_deleted: int = 0
    packs_repacked: int = 0
    packs_written: int = 0
    blobs_copied: int = 0
    packs_too_young: int = 0
    # Mostly unreferenced, but in an archive class: left as they are (see collect_packs).
    packs_archived_kept: int = 0
    bytes_deleted: int = 0
    deleted: DeleteResult = field(default_factory=DeleteResult)


def collect_packs(
    store: ObjectStore,
    base: str,
    keys: DatasetKeys,
    referenced: set[str],
    *,
    cutoff: datetime,
    dry_run: bool = False,
    min_used: float = DEFAULT_MIN_USED,
    pack_size: int = DEFAULT_PACK_SIZE,
) -> PackCollectResult:
    """Apply the rules above to one repository; `referenced` holds every kept snapshot's blobs."""
    index = load_pack_index(store, base, keys)
    if index.unreadable:
        raise IndexUnreadable(
            f"{len(index.unreadable)} pack index(es) at {base!r} do not authenticate "
            f"(first: {index.unreadable[0]}); nothing was deleted"
        )
    data_at = data_prefix(base)
    packs = {info.key[len(data_at) :]: info for info in store.list(data_at)}
    indexes = {info.key[len(index_prefix(base)) :]: info for info in store.list(index_prefix(base))}
    result = PackCollectResult(packs_total=len(packs))

    doomed: list[str] = []  # packs whose index and data go
    repack: list[str] = []
    holders: dict[str, list[str]] = {}
    for pack_id, blobs in index.packs.items():
        for bid, _ in blobs:
            holders.setdefault(bid, []).append(pack_id)
    for pack_id, blobs in index.packs.items():
        indexed_at = indexes[pack_id].mtime if pack_id in indexes else None
        if indexed_at is not None and indexed_at > cutoff:
            result.packs_too_young += 1
            continue
        total = sum(loc.length for _, loc in blobs) or 1
        used = sum(loc.length for bid, loc in blobs if bid in referenced)
        if pack_id not in packs or used == 0:
            doomed.append(pack_id)
        elif used / total < min_used:
            if packs[pack_id].archived:
                # Copying its live blobs would need a retrieval (hours, and billed per GB), and
                # an archive class bills early deletion besides: cheaper to keep it whole.
                result.packs_archived_kept += 1
                continue
            repack.append(pack_id)
    orphans = [
        pack_id
        for pack_id, info in packs.items()
        if pack_id not in index.packs and info.mtime <= cutoff
    ]
    if dry_run:
        result.packs_deleted = len(doomed) + len(orphans)
        result.packs_repacked = len(repack)
        return result

    # A blob is copied only when no pack that stays holds it (a repack interrupted earlier may
    # have left it in two), and once; packs written now are never among those deleted after.
    staying = set(index.packs) - set(doomed) - set(repack)
    copied: set[str] = set()
    written: set[str] = set()
    # Content and file lists stay in packs of their own kind (only content may go cold).
    open_packs: dict[str, PackContents] = {}
    for pack_id in repack:
        kind = index.kinds.get(pack_id, DATA_PACK)
        data = store.get(pack_object(base, pack_id))
        for bid, loc in index.packs[pack_id]:
            if bid not in referenced or bid in copied or staying.intersection(holders[bid]):
                continue
            copied.add(bid)
            sealed = data[loc.offset : loc.offset + loc.length]
            # Copied sealed as it is (a blob is bound to its id, not its place), once it opens.
            open_blob(keys, bid, loc, sealed)
            contents = open_packs.setdefault(kind, PackContents.empty())
            contents.add(bid, sealed, loc.raw_length, loc.compressed)
            result.blobs_copied += 1
            if contents.size >= pack_size:
                written.add(store_pack(store, base, keys, open_packs.pop(kind), kind=kind)[0])
    for kind, contents in open_packs.items():
        if contents.entries:
            written.add(store_pack(store, base, keys, contents, kind=kind)[0])
    result.packs_written = len(written)
    result.packs_repacked = len(repack)

    gone = [pack_id for pack_id in doomed + repack if pack_id not in written]
    # A pack id is its content's hash: a pack an interrupted repack left without its index is
    # written again, under the same name, by this one.
    orphans = [pack_id for pack_id in orphans if pack_id not in written]
    result.deleted = store.delete_versions((index_object(base, p), None) for p in gone)
    result.deleted.extend(
        store.delete_versions((pack_object(base, p), None) for p in gone + orphans if p in packs)
    )
    removed = {key for key, _ in result.deleted.deleted}
    for pack_id in gone + orphans:
        if pack_object(base, pack_id) in removed and pack_id in packs:
            result.packs_deleted += 1
            result.bytes_deleted += packs[pack_id].size
    return result
