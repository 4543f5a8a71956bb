"""Backup and restore end to end, on S3 (moto over HTTP) and local stores."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO

import pytest

from backups.engine import (
    RepositoryNotInitialized,
    SourceEmpty,
    backup,
    list_snapshots,
    load_manifest,
    restore,
)
from backups.storage import (
    DeleteResult,
    ObjectInfo,
    ObjectStore,
    ObjectVersion,
    S3ObjectStore,
    StoreNotFound,
)
from tests.backups.engine.conftest import CHUNK, MARKER, read_tree, sample_tree, write_tree
from tests.s3server import TEST_REGION

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class Spy:
    """Wraps a store, counting reads and writes; can fail the n-th chunk upload."""

    def __init__(self, inner: ObjectStore, *, fail_after_chunk_puts: int | None = None) -> None:
        self.inner = inner
        self.opened: list[str] = []
        self.put_keys: list[str] = []
        self.fail_after = fail_after_chunk_puts
        self._lock = threading.Lock()

    def describe(self) -> str:
        return "spy on " + self.inner.describe()

    def put(self, key: str, data: bytes | bytearray | BinaryIO, **kwargs: Any) -> None:
        with self._lock:
            chunk_puts = sum("/chunks/" in k for k in self.put_keys)
            if "/chunks/" in key and self.fail_after is not None and chunk_puts >= self.fail_after:
                raise RuntimeError("injected failure")
            self.put_keys.append(key)
        self.inner.put(key, data, **kwargs)

    def get(self, key: str) -> bytes:
        self.opened.append(key)
        return self.inner.get(key)

    def get_range(self, key: str, offset: int, length: int) -> bytes:
        self.opened.append(key)
        return self.inner.get_range(key, offset, length)

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        self.opened.append(key)
        return self.inner.open(key)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def list(self, prefix: str = "", *, skipped: list[str] | None = None) -> Iterator[ObjectInfo]:
        return self.inner.list(prefix, skipped=skipped)

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]:
        return self.inner.list_versions(prefix)

    def delete_versions(self, items: Iterable[tuple[str, str | None]]) -> DeleteResult:
        return self.inner.delete_versions(items)


@pytest.mark.parametrize("source_kind", ["local", "s3"])
@pytest.mark.parametrize("target_kind", ["local", "s3"])
def test_restore_is_byte_identical(
    source_kind: str,
    target_kind: str,
    make_local_store: Callable[[], ObjectStore],
    make_s3_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    make = {"local": make_local_store, "s3": make_s3_store}
    source, target, destination = make[source_kind](), make[target_kind](), make[source_kind]()
    tree = sample_tree()
    write_tree(source, "client/data", tree)
    source.put("client/data-sibling/not-mine", b"outside the prefix")
    init_target(target, "org/client/ds")
    progress: list[tuple[int, int]] = []

    result = backup(
        source,
        "client/data",
        [(target, "org/client/ds")],
        data_key,
        chunk_size=CHUNK,
        repository_format=1,
        threads=4,
        progress=lambda done, total: progress.append((done, total)),
    )

    assert result.stats.files_seen == len(tree)
    assert result.stats.bytes_seen == sum(map(len, tree.values()))
    assert result.stats.chunks_deduplicated >= 1, "dup/one.bin and dup/two.bin share a chunk"
    assert progress[-1] == (result.stats.bytes_seen, result.stats.bytes_seen)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)
    assert [s.id for s in list_snapshots(target, "org/client/ds")] == [result.manifest_id]

    restored = restore(
        target, "org/client/ds", data_key, result.manifest_id, destination, "restored", threads=4
    )
    assert restored.files_restored == len(tree)
    assert read_tree(destination, "restored") == tree


def test_no_plaintext_or_names_in_stored_objects(
    make_store: Callable[[], ObjectStore],
    make_local_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, target = make_local_store(), make_store()
    write_tree(source, "", sample_tree())
    init_target(target, "base")
    backup(
        source, "", [(target, "base")], data_key, chunk_size=CHUNK, repository_format=1, threads=4
    )
    stored = {info.key: target.get(info.key) for info in target.list("")}
    assert len(stored) > 5
    for key, blob in stored.items():
        assert MARKER not in blob, key
        assert "файл".encode() not in blob, key
        assert b"deep file" not in blob, key
        assert MARKER.decode() not in key


def test_incremental_rerun_reads_nothing_unchanged(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    inner, target = make_store(), make_store()
    tree = sample_tree()
    write_tree(inner, "src", tree)
    init_target(target, "repo")
    source = Spy(inner)
    first = backup(
        source, "src", [(target, "repo")], data_key, chunk_size=CHUNK, repository_format=1, now=T0
    )
    assert len(source.opened) == len(tree)

    source.opened.clear()
    second = backup(
        source,
        "src",
        [(target, "repo")],
        data_key,
        first.manifest,
        chunk_size=CHUNK,
        repository_format=1,
        now=T0 + timedelta(hours=1),
    )
    assert source.opened == []
    assert second.stats.files_reused == len(tree)
    assert second.stats.chunks_uploaded == 0
    assert second.manifest.files == first.manifest.files

    inner.put("src/spaces in name/a b c.bin", b"changed content")
    third = backup(
        source,
        "src",
        [(target, "repo")],
        data_key,
        second.manifest,
        chunk_size=CHUNK,
        repository_format=1,
        now=T0 + timedelta(hours=2),
    )
    assert source.opened == ["src/spaces in name/a b c.bin"]
    assert third.stats.files_read == 1
    assert third.stats.chunks_uploaded == 1


def test_point_in_time_restore(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, target, destination = make_store(), make_store(), make_store()
    source.put("doc.txt", b"version one")
    source.put("kept.txt", b"unchanged")
    init_target(target, "r")
    old = backup(
        source, "", [(target, "r")], data_key, chunk_size=CHUNK, repository_format=1, now=T0
    )
    source.put("doc.txt", b"version two, longer")
    source.delete_versions([("kept.txt", None)])
    source.put("new.txt", b"added later")
    new = backup(
        source,
        "",
        [(target, "r")],
        data_key,
        old.manifest,
        chunk_size=CHUNK,
        repository_format=1,
        now=T0 + timedelta(days=1),
    )
    assert [s.id for s in list_snapshots(target, "r")] == [old.manifest_id, new.manifest_id]

    restore(target, "r", data_key, old.manifest_id, destination, "old")
    restore(target, "r", data_key, new.manifest_id, destination, "new")
    assert read_tree(destination, "old") == {"doc.txt": b"version one", "kept.txt": b"unchanged"}
    assert read_tree(destination, "new") == {
        "doc.txt": b"version two, longer",
        "new.txt": b"added later",
    }


def test_restore_path_prefix_selects_a_subtree(
    make_local_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, target, destination = make_local_store(), make_local_store(), make_local_store()
    write_tree(source, "", {"docs/a": b"1", "docs/b/c": b"2", "docs2/x": b"3"})
    init_target(target, "r")
    snap = backup(source, "", [(target, "r")], data_key, chunk_size=CHUNK, repository_format=1)
    restore(target, "r", data_key, snap.manifest_id, destination, "", path_prefix="docs/")
    assert read_tree(destination, "") == {"docs/a": b"1", "docs/b/c": b"2"}


def test_interrupted_backup_leaves_no_snapshot_and_rerun_uploads_the_rest(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, inner = make_store(), make_store()
    rng = random.Random(7)
    tree = {f"f{i:02d}": rng.randbytes(CHUNK + 100 + i) for i in range(12)}  # 2 chunks each
    write_tree(source, "", tree)
    init_target(inner, "r")
    failing = Spy(inner, fail_after_chunk_puts=7)

    with pytest.raises(RuntimeError, match="injected failure"):
        backup(
            source, "", [(failing, "r")], data_key, chunk_size=CHUNK, repository_format=1, threads=3
        )
    assert list_snapshots(inner, "r") == []
    stored_after_crash = {i.key for i in inner.list("r/chunks/")}
    assert len(stored_after_crash) == 7

    resumed = Spy(inner)
    result = backup(
        source, "", [(resumed, "r")], data_key, chunk_size=CHUNK, repository_format=1, threads=3
    )
    uploaded = [k for k in resumed.put_keys if "/chunks/" in k]
    assert result.stats.chunks_uploaded == 24 - 7
    assert not stored_after_crash.intersection(uploaded), "no chunk is uploaded twice"
    assert len(list_snapshots(inner, "r")) == 1

    destination = make_store()
    restore(inner, "r", data_key, result.manifest_id, destination, "")
    assert read_tree(destination, "") == tree


def test_multiple_targets_and_a_new_target_gets_everything(
    make_local_store: Callable[[], ObjectStore],
    make_s3_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, local_target, s3_target = make_local_store(), make_local_store(), make_s3_store()
    write_tree(source, "", sample_tree())
    init_target(local_target, "a")
    first = backup(
        source, "", [(local_target, "a")], data_key, chunk_size=CHUNK, repository_format=1
    )
    init_target(s3_target, "b")
    # The parent's chunks are on the first target only: the second must still get every chunk.
    second = backup(
        source,
        "",
        [(local_target, "a"), (s3_target, "b")],
        data_key,
        first.manifest,
        chunk_size=CHUNK,
        repository_format=1,
    )
    # Empty files have no chunks, so only they can be reused from the parent.
    assert second.stats.files_read == sum(1 for data in sample_tree().values() if data)
    assert second.stats.files_reused == 2
    for store, base in [(local_target, "a"), (s3_target, "b")]:
        destination = make_local_store()
        restore(store, base, data_key, second.manifest_id, destination, "")
        assert read_tree(destination, "") == sample_tree()
    assert load_manifest(s3_target, "b", data_key, second.manifest_id) == second.manifest


def test_uninitialized_target_is_refused(
    make_local_store: Callable[[], ObjectStore], data_key: bytes
) -> None:
    source, target = make_local_store(), make_local_store()
    source.put("f", b"x")
    with pytest.raises(RepositoryNotInitialized):
        backup(source, "", [(target, "r")], data_key)
    assert list(target.list("")) == []


def test_empty_source_is_refused_unless_allowed(
    make_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source, target = make_store(), make_store()
    source.put("elsewhere/f", b"x")
    init_target(target, "r")
    with pytest.raises(SourceEmpty, match="typo"):
        backup(source, "typo", [(target, "r")], data_key)
    result = backup(source, "typo", [(target, "r")], data_key, allow_empty=True)
    assert result.manifest.files == ()


def test_missing_source_bucket_is_store_not_found(
    s3_endpoint: str,
    make_local_store: Callable[[], ObjectStore],
    init_target: Callable[[ObjectStore, str], None],
    data_key: bytes,
) -> None:
    source = S3ObjectStore(
        bucket="missing-source",
        endpoint_url=s3_endpoint,
        region=TEST_REGION,
        access_key_id="testing",
        secret_access_key="testing",
    )
    target = make_local_store()
    init_target(target, "r")
    with pytest.raises(StoreNotFound, match="missing-source"):
        backup(source, "", [(target, "r")], data_key)
