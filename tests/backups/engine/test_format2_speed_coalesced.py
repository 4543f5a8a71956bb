"""Format 2's coalesced reads and reused file-list segments: fewer requests, same guarantees.

A big file's blobs are written back to back and read with a few ranged reads; the restore is
still byte-identical, a damaged blob inside such a read is still refused, and a no-change
rerun names its file list by the parent's segment ids without changing what loads."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from backups.engine import ChunkCorrupt, backup, load_manifest, restore
from backups.engine.crypto import DatasetKeys
from backups.engine.packs import load_pack_index, pack_object
from backups.storage import LocalObjectStore, ObjectStore
from tests.backups.engine.conftest import read_tree, write_tree

BASE = "repo"


class _CountingStore(LocalObjectStore):
    """A local store that counts ranged reads."""

    ranged_reads = 0

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        type(self).ranged_reads += 1
        return super().get_range(key, offset, length)


def _tree() -> dict[str, bytes]:
    rng = random.Random(99)
    tree = {f"small/{i:03d}.txt": rng.randbytes(rng.randint(10, 3000)) for i in range(40)}
    tree["medium.bin"] = rng.randbytes(1_500_000)
    tree["big.bin"] = rng.randbytes(9_000_000)
    return tree


@pytest.fixture
def backed_up(
    tmp_path_factory: pytest.TempPathFactory,
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> tuple[_CountingStore, dict[str, bytes], str]:
    store = _CountingStore(tmp_path_factory.mktemp("repo"), fsync=False)
    init_target(store, BASE)
    source = LocalObjectStore(tmp_path_factory.mktemp("src"), fsync=False)
    tree = _tree()
    write_tree(source, "", tree)
    result = backup(source, "", [(store, BASE)], data_key, threads=4)
    return store, tree, result.manifest_id


def test_a_big_file_is_restored_byte_identical_with_far_fewer_reads_than_blobs(
    backed_up: tuple[_CountingStore, dict[str, bytes], str],
    data_key: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    store, tree, manifest_id = backed_up
    manifest = load_manifest(store, BASE, data_key, manifest_id)
    blobs = sum(len(e.chunks) for e in manifest.files)
    destination = LocalObjectStore(tmp_path_factory.mktemp("out"), fsync=False)
    _CountingStore.ranged_reads = 0

    restore(store, BASE, data_key, manifest_id, destination, threads=4)

    assert read_tree(destination, "") == tree
    big = next(e for e in manifest.files if e.path == "big.bin")
    assert len(big.chunks) > 4
    # One read per pack the big file touches, plus a few for the small files' spans.
    assert _CountingStore.ranged_reads < blobs // 4


def test_a_damaged_blob_inside_a_coalesced_read_is_refused(
    backed_up: tuple[_CountingStore, dict[str, bytes], str],
    data_key: bytes,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    store, _, manifest_id = backed_up
    manifest = load_manifest(store, BASE, data_key, manifest_id)
    big = next(e for e in manifest.files if e.path == "big.bin")
    index = load_pack_index(store, BASE, DatasetKeys.from_data_key(data_key))
    # A blob in the middle of the file: neither the first nor the last byte of a read.
    location = index.blobs[big.chunks[len(big.chunks) // 2]]
    key = pack_object(BASE, location.pack)
    pack = bytearray(store.get(key))
    pack[location.offset + location.length // 2] ^= 0x01
    store.put(key, bytes(pack))
    destination = LocalObjectStore(tmp_path_factory.mktemp("out"), fsync=False)

    with pytest.raises(ChunkCorrupt):
        restore(store, BASE, data_key, manifest_id, destination, threads=4)

    assert "big.bin" not in read_tree(destination, "")


@pytest.mark.parametrize("parent_files", [True, False], ids=["parent-loaded", "parent-streamed"])
def test_a_no_change_rerun_reuses_the_parent_segments_and_loads_the_same_files(
    tmp_path_factory: pytest.TempPathFactory,
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
    parent_files: bool,
) -> None:
    store = LocalObjectStore(tmp_path_factory.mktemp("repo"), fsync=False)
    init_target(store, BASE)
    source = LocalObjectStore(tmp_path_factory.mktemp("src"), fsync=False)
    write_tree(source, "", {f"d/{i:05d}.txt": os.urandom(8) for i in range(3000)})
    first = backup(source, "", [(store, BASE)], data_key)
    full = load_manifest(store, BASE, data_key, first.manifest_id)
    assert len(full.segments) > 2
    assert sum(full.segment_sizes) == len(full.files) == first.manifest.file_count == 3000
    # A scheduled run streams its parent's list (files=False); both must reuse the same way.
    parent = load_manifest(store, BASE, data_key, first.manifest_id, files=parent_files)
    assert parent.files_loaded is parent_files
    assert parent.file_count == 3000
    assert parent.total_size == 3000 * 8

    again = backup(source, "", [(store, BASE)], data_key, parent)
    source.put("d/00042.txt", b"changed")
    changed = backup(source, "", [(store, BASE)], data_key, parent)

    assert again.manifest.segments == parent.segments
    assert again.stats.chunks_uploaded == 0
    assert again.stats.files_reused == 3000
    assert changed.stats.files_reused == 2999
    # One edited file rewrites its own segment only.
    assert len(set(changed.manifest.segments) - set(parent.segments)) == 1
    assert load_manifest(store, BASE, data_key, again.manifest_id).files == full.files
    edited = load_manifest(store, BASE, data_key, changed.manifest_id).files
    assert [e.path for e in edited] == [e.path for e in full.files]
    assert [e for e in edited if e not in full.files] == [
        next(e for e in edited if e.path == "d/00042.txt")
    ]
    assert next(e for e in edited if e.path == "d/00042.txt").size == len(b"changed")
