"""Repository format 2: content-defined chunks, compression, packs and their indexes, repack,
and reading format 1 repositories side by side."""

from __future__ import annotations

import io
import os
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from backups.engine import (
    RetentionPolicy,
    backup,
    forget,
    garbage_collect,
    restore,
    verify,
)
from backups.engine.chunker import MAX_SIZE, MIN_SIZE, Chunker
from backups.engine.crypto import DatasetKeys
from backups.engine.packs import (
    data_prefix,
    index_object,
    index_prefix,
    load_pack_index,
    open_blob,
    pack_object,
    seal_blob,
)
from backups.engine.repack import IndexUnreadable
from backups.storage import ObjectStore
from tests.backups.engine.conftest import MARKER, read_tree, sample_tree, write_tree

Store = Callable[[], ObjectStore]
Init = Callable[[ObjectStore, str], None]


def _csv(rows: int, seed: int = 7) -> bytes:
    rng = random.Random(seed)
    return b"".join(
        b"%d,client-%d,%s,%.4f\n"
        % (i, rng.randrange(500), rng.choice([b"open", b"won"]), rng.random())
        for i in range(rows)
    )


def _objects(store: ObjectStore, base: str) -> dict[str, int]:
    return {info.key: info.size for info in store.list(base + "/")}


def test_insertion_changes_only_the_chunks_around_it() -> None:
    data = _csv(200_000)
    chunker = Chunker(DatasetKeys.from_data_key(os.urandom(32)).chunker_seed)
    before = list(chunker.split(data))
    after = list(chunker.split(data[:1000] + b"an inserted line\n" + data[1000:]))
    assert len(before) > 4
    assert all(MIN_SIZE <= len(c) <= MAX_SIZE for c in before[:-1])
    assert b"".join(after) == data[:1000] + b"an inserted line\n" + data[1000:]
    changed = set(after) - set(before)
    # An insertion re-cuts at most the chunk it falls in and the one after.
    assert 1 <= len(changed) <= 2
    assert len(set(before) & set(after)) >= len(before) - 2


def test_boundaries_are_keyed_per_dataset() -> None:
    data = os.urandom(12 * 1024 * 1024)
    one = [
        len(c) for c in Chunker(DatasetKeys.from_data_key(os.urandom(32)).chunker_seed).split(data)
    ]
    two = [
        len(c) for c in Chunker(DatasetKeys.from_data_key(os.urandom(32)).chunker_seed).split(data)
    ]
    assert sum(one) == sum(two) == len(data)
    assert one != two


def test_stream_and_buffer_cut_alike() -> None:
    data = _csv(120_000)
    chunker = Chunker(12345)
    assert list(chunker.chunks(io.BytesIO(data))) == list(chunker.split(data))


@pytest.mark.parametrize("payload", [b"", b"x", b"a" * 100_000, os.urandom(100_000)])
def test_blob_round_trip_compresses_only_when_it_shrinks(payload: bytes) -> None:
    keys = DatasetKeys.from_data_key(os.urandom(32))
    sealed, compressed = seal_blob(keys, "bid", payload, 3)
    assert compressed == (len(payload) > 1000 and payload == b"a" * 100_000)
    from backups.engine.packs import BlobLocation

    location = BlobLocation("p", 0, len(sealed), len(payload), compressed)
    assert open_blob(keys, "bid", location, sealed) == payload
    if payload:
        assert MARKER not in sealed


def test_format2_round_trip_packs_small_files_and_compresses(
    make_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_store(), make_store()
    tree = sample_tree()
    tree.update(
        {f"labels/{i:05d}.json": b'{"label": %d, "box": [1, 2, 3, 4]}' % i for i in range(600)}
    )
    tree["export.csv"] = _csv(60_000)
    write_tree(source, "src", tree)
    init_target(target, "r")
    result = backup(source, "src", [(target, "r")], data_key)
    assert result.manifest.format == 2
    stored = _objects(target, "r")
    packs = [k for k in stored if k.startswith(data_prefix("r"))]
    # 600+ small files and a CSV: a data pack or two, each with its index, never an object per
    # file, and one pack for the file list.
    assert 2 <= len(packs) <= 3
    assert len(stored) == 2 * len(packs) + 2  # + key and manifest
    assert len(packs) <= 3  # data, and the file list's own pack
    assert sum(stored[k] for k in packs) < sum(len(v) for v in tree.values()) * 0.6
    for key in stored:
        assert MARKER not in target.get(key)
    destination = make_store()
    restored = restore(target, "r", data_key, result.manifest_id, destination, "out")
    assert read_tree(destination, "out") == tree
    assert restored.files_restored == len(tree)
    assert verify(target, "r", data_key, result.manifest_id, read_data_subset=1.0).ok


def test_small_edit_adds_little_and_unchanged_files_are_not_read(
    make_local_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_local_store(), make_local_store()
    export = _csv(300_000)
    write_tree(
        source, "", {"export.csv": export, "log.jsonl": b'{"e": 1}\n' * 50_000, "a.json": b"{}"}
    )
    init_target(target, "r")
    first = backup(source, "", [(target, "r")], data_key)
    size_before = sum(_objects(target, "r").values())
    source.put("export.csv", b"inserted,at,the,top\n" + export)
    source.put("a.json", b'{"changed": true}')
    second = backup(source, "", [(target, "r")], data_key, parent=first.manifest)
    added = sum(_objects(target, "r").values()) - size_before
    assert second.stats.files_reused == 1
    # A line inserted at the top of a ~10 MB export costs about one chunk, compressed.
    assert added < 1024 * 1024, added
    destination = make_local_store()
    restore(target, "r", data_key, second.manifest_id, destination, "")
    assert destination.get("export.csv") == b"inserted,at,the,top\n" + export


def test_interrupted_run_reuses_the_packs_it_completed(
    make_local_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_local_store(), make_local_store()
    write_tree(source, "", {f"f{i}.bin": os.urandom(300_000) for i in range(12)})
    init_target(target, "r")
    calls = 0

    def crash(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if done > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backup(
            source, "", [(target, "r")], data_key, pack_size=512 * 1024, threads=1, progress=crash
        )
    assert not [k for k in _objects(target, "r") if "/snapshots/" in k]
    completed = len(load_pack_index(target, "r", DatasetKeys.from_data_key(data_key)).blobs)
    assert completed >= 1
    result = backup(source, "", [(target, "r")], data_key, pack_size=512 * 1024)
    assert result.stats.chunks_deduplicated >= completed
    destination = make_local_store()
    restore(target, "r", data_key, result.manifest_id, destination, "")
    assert read_tree(destination, "") == read_tree(source, "")


def test_verify_reports_a_damaged_pack_and_an_unreadable_index(
    make_local_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_local_store(), make_local_store()
    write_tree(source, "", {"a.csv": _csv(50_000), "b.bin": os.urandom(200_000)})
    init_target(target, "r")
    result = backup(source, "", [(target, "r")], data_key)
    # The data pack (the file list has a small pack of its own).
    stored = _objects(target, "r")
    pack_key = max((k for k in stored if k.startswith(data_prefix("r"))), key=stored.__getitem__)
    data = bytearray(target.get(pack_key))
    data[len(data) // 2] ^= 0xFF
    target.put(pack_key, bytes(data))
    report = verify(target, "r", data_key, result.manifest_id, read_data_subset=1.0)
    assert not report.ok
    assert report.corrupt
    assert report.damaged_files
    # Truncated: the listing alone shows it.
    target.put(pack_key, bytes(data[:-10]))
    assert verify(target, "r", data_key, result.manifest_id).corrupt
    # An index that does not authenticate: its blobs are missing, and GC deletes nothing.
    pack_id = pack_key.rsplit("/", 1)[-1]
    target.put(index_object("r", pack_id), b"\x02" + os.urandom(60))
    report = verify(target, "r", data_key, result.manifest_id)
    assert report.unreadable_indexes == [pack_id]
    assert report.missing
    with pytest.raises(IndexUnreadable):
        garbage_collect(target, "r", data_key, min_age=timedelta(0))


def test_repack_keeps_what_kept_snapshots_need(
    make_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_store(), make_store()
    keep = {f"keep{i}.bin": os.urandom(100_000) for i in range(3)}
    drop = {f"drop{i}.bin": os.urandom(100_000) for i in range(9)}
    write_tree(source, "", {**keep, **drop})
    init_target(target, "r")
    backup(source, "", [(target, "r")], data_key)
    for name in drop:
        source.delete_versions([(name, None)])
    kept = backup(source, "", [(target, "r")], data_key)
    forget(target, "r", RetentionPolicy(keep_last=1))
    before = sum(v for k, v in _objects(target, "r").items() if k.startswith(data_prefix("r")))
    result = garbage_collect(target, "r", data_key, min_age=timedelta(0))
    # The data pack (3 of 12 blobs still used). The file list's cuts depend on the dataset key:
    # when one falls just before keep0, the kept segment is shared with the first snapshot's
    # list, whose pack is then repacked too (one more pack, one more blob).
    assert result.packs.packs_repacked in (1, 2)
    assert result.packs.blobs_copied == 3 + (result.packs.packs_repacked - 1)
    after = sum(v for k, v in _objects(target, "r").items() if k.startswith(data_prefix("r")))
    assert after < before * 0.4
    destination = make_store()
    restore(target, "r", data_key, kept.manifest_id, destination, "")
    assert read_tree(destination, "") == keep
    assert verify(target, "r", data_key, kept.manifest_id, read_data_subset=1.0).ok


def _crash_after(store: ObjectStore, writes_allowed: int) -> None:
    """Make the store's writes (puts and deletes) fail after the first `writes_allowed`."""
    count = 0
    real_put, real_delete = store.put, store.delete_versions

    def guard() -> None:
        nonlocal count
        count += 1
        if count > writes_allowed:
            raise KeyboardInterrupt

    def put(key: str, data: Any, **kwargs: Any) -> None:
        guard()
        real_put(key, data, **kwargs)

    def delete_versions(items: Any) -> Any:
        guard()
        return real_delete(items)

    store.put = put  # type: ignore[method-assign]
    store.delete_versions = delete_versions  # type: ignore[method-assign]


def test_crash_mid_repack_loses_nothing(
    make_local_store: Store, init_target: Init, data_key: bytes
) -> None:
    """Every point at which a repack can stop: after the new pack, after its index, after the
    old index went. Each leaves a restorable snapshot, and the next GC finishes the job."""
    for stop_after in range(1, 4):
        source, target = make_local_store(), make_local_store()
        keep = {"keep.bin": os.urandom(50_000)}
        write_tree(source, "", {**keep, **{f"d{i}": os.urandom(80_000) for i in range(5)}})
        init_target(target, "r")
        backup(source, "", [(target, "r")], data_key)
        for i in range(5):
            source.delete_versions([(f"d{i}", None)])
        kept = backup(source, "", [(target, "r")], data_key)
        forget(target, "r", RetentionPolicy(keep_last=1))
        _crash_after(target, stop_after)
        with pytest.raises(KeyboardInterrupt):
            garbage_collect(target, "r", data_key, min_age=timedelta(0))
        del target.put, target.delete_versions  # back to the class's methods
        destination = make_local_store()
        restore(target, "r", data_key, kept.manifest_id, destination, "")
        assert read_tree(destination, "") == keep, stop_after
        garbage_collect(target, "r", data_key, min_age=timedelta(0))
        assert verify(target, "r", data_key, kept.manifest_id, read_data_subset=1.0).ok
        packs = [k for k in _objects(target, "r") if k.startswith(data_prefix("r"))]
        indexes = [k for k in _objects(target, "r") if k.startswith(index_prefix("r"))]
        # Every pack has its index and holds something a kept snapshot needs.
        assert len(packs) == len(indexes) <= 2, stop_after
        assert garbage_collect(target, "r", data_key, min_age=timedelta(0)).packs.packs_deleted == 0


def test_format1_repository_stays_readable_and_new_snapshots_are_format2(
    make_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_store(), make_store()
    tree = sample_tree()
    write_tree(source, "", tree)
    init_target(target, "r")
    old = backup(source, "", [(target, "r")], data_key, chunk_size=64 * 1024, repository_format=1)
    assert old.manifest.format == 1
    source.put("new.txt", b"after the upgrade")
    new = backup(source, "", [(target, "r")], data_key, parent=old.manifest)
    assert new.manifest.format == 2
    # The format-1 parent's chunks are not blobs: every file is read into packs once.
    assert new.stats.files_reused == 0
    for snapshot, expected in ((old, tree), (new, {**tree, "new.txt": b"after the upgrade"})):
        destination = make_store()
        restore(target, "r", data_key, snapshot.manifest_id, destination, "")
        assert read_tree(destination, "") == expected
        assert verify(target, "r", data_key, snapshot.manifest_id, read_data_subset=1.0).ok
    # GC with both formats present keeps both snapshots whole.
    garbage_collect(target, "r", data_key, min_age=timedelta(0))
    destination = make_store()
    restore(target, "r", data_key, old.manifest_id, destination, "")
    assert read_tree(destination, "") == tree
    # Once only format 2 is kept, the format-1 chunks go.
    forget(target, "r", RetentionPolicy(keep_last=1))
    result = garbage_collect(target, "r", data_key, min_age=timedelta(0))
    assert result.chunks_deleted > 0
    assert not [k for k in _objects(target, "r") if "/chunks/" in k]


def test_pack_object_is_named_by_its_content(
    make_local_store: Store, init_target: Init, data_key: bytes
) -> None:
    import hashlib

    source, target = make_local_store(), make_local_store()
    write_tree(source, "", {"a": os.urandom(1000)})
    init_target(target, "r")
    backup(source, "", [(target, "r")], data_key)
    keys = [k for k in _objects(target, "r") if k.startswith(data_prefix("r"))]
    assert len(keys) == 2  # the file's data and the file list
    for key in keys:
        assert key == pack_object("r", hashlib.sha256(target.get(key)).hexdigest())


def test_ranged_reads_on_both_stores(make_store: Store) -> None:
    store = make_store()
    data = os.urandom(100_000)
    store.put("obj", data)
    assert store.get_range("obj", 0, 10) == data[:10]
    assert store.get_range("obj", 99_990, 10) == data[-10:]
    assert store.get_range("obj", 5000, 0) == b""
    assert store.get_range("obj", 99_995, 10) == data[-5:]  # fewer only at the end


def test_a_damaged_file_list_is_reported_by_verify(
    make_local_store: Store, init_target: Init, data_key: bytes
) -> None:
    source, target = make_local_store(), make_local_store()
    write_tree(source, "", {"a.bin": os.urandom(300_000)})
    init_target(target, "r")
    result = backup(source, "", [(target, "r")], data_key)
    stored = _objects(target, "r")
    lists = min((k for k in stored if k.startswith(data_prefix("r"))), key=stored.__getitem__)
    damaged = bytearray(target.get(lists))
    damaged[-1] ^= 1
    target.put(lists, bytes(damaged))
    report = verify(target, "r", data_key, result.manifest_id)
    assert not report.ok
    assert report.damaged_files == ["(the snapshot's file list)"]
