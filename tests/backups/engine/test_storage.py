"""The ObjectStore contract, run against both backends, and the error vocabulary."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backups.storage import (
    CredentialsError,
    EndpointUnreachable,
    InvalidKey,
    LocalObjectStore,
    ObjectNotFound,
    ObjectStore,
    S3ObjectStore,
    StorageError,
    StoreNotFound,
)
from tests.s3server import TEST_REGION, free_port


def test_put_get_head_list_roundtrip(make_store: Callable[[], ObjectStore]) -> None:
    store = make_store()
    before = datetime.now(UTC) - timedelta(seconds=5)
    store.put("a/b/c.txt", b"hello")
    store.put("a/b-sibling", b"x")
    store.put("a/empty", b"")
    store.put("z", bytearray(b"from a bytearray"))

    assert store.get("a/b/c.txt") == b"hello"
    assert store.get("a/empty") == b""
    assert store.get("z") == b"from a bytearray"
    info = store.head("a/b/c.txt")
    assert info is not None
    assert info.size == 5
    assert info.mtime.tzinfo is not None
    assert info.mtime >= before
    assert info.etag
    assert store.head("a/missing") is None
    assert [i.key for i in store.list("a/")] == ["a/b-sibling", "a/b/c.txt", "a/empty"]
    assert [i.key for i in store.list("a/b")] == ["a/b-sibling", "a/b/c.txt"]
    assert [i.key for i in store.list("a/b/")] == ["a/b/c.txt"]
    assert [i.key for i in store.list("nothing/")] == []


def test_overwrite_changes_etag_and_content(make_store: Callable[[], ObjectStore]) -> None:
    store = make_store()
    store.put("k", b"one")
    first = store.head("k")
    store.put("k", b"two!")
    second = store.head("k")
    assert store.get("k") == b"two!"
    assert first is not None
    assert second is not None
    assert first.etag != second.etag


def test_get_missing_raises_object_not_found(make_store: Callable[[], ObjectStore]) -> None:
    store = make_store()
    with pytest.raises(ObjectNotFound, match="nope"):
        store.get("nope")
    with pytest.raises(ObjectNotFound):
        store.open("nope").__enter__()


def test_streamed_put_larger_than_a_part(make_store: Callable[[], ObjectStore]) -> None:
    # 5 MiB is S3's minimum part size: 11 MiB makes a three-part multipart upload on S3.
    store = make_store()
    if isinstance(store, S3ObjectStore):
        store = S3ObjectStore(
            bucket=store.bucket,
            endpoint_url=store.endpoint_url,
            region=TEST_REGION,
            access_key_id="testing",
            secret_access_key="testing",
            part_size=5 * 1024 * 1024,
        )
    data = os.urandom(11 * 1024 * 1024 + 3)
    store.put("big/object", io.BytesIO(data))
    with store.open("big/object") as stream:
        assert stream.read() == data
    info = store.head("big/object")
    assert info is not None
    assert info.size == len(data)


def test_failing_stream_stores_nothing(make_store: Callable[[], ObjectStore]) -> None:
    class Exploding(io.RawIOBase):
        def __init__(self) -> None:
            self.calls = 0

        def read(self, size: int = -1) -> bytes:
            self.calls += 1
            if self.calls > 2:
                raise RuntimeError("source went away")
            return b"x" * (6 * 1024 * 1024)

    store = make_store()
    if isinstance(store, S3ObjectStore):
        store = S3ObjectStore(
            bucket=store.bucket,
            endpoint_url=store.endpoint_url,
            region=TEST_REGION,
            access_key_id="testing",
            secret_access_key="testing",
            part_size=5 * 1024 * 1024,
        )
    with pytest.raises(RuntimeError, match="source went away"):
        store.put("partial", Exploding())
    assert store.head("partial") is None
    assert list(store.list("")) == []


def test_delete_versions_is_idempotent(make_store: Callable[[], ObjectStore]) -> None:
    store = make_store()
    for i in range(5):
        store.put(f"d/{i}", b"x")
    versions = list(store.list_versions("d/"))
    assert len(versions) == 5
    assert all(v.version_id == "null" and not v.is_delete_marker for v in versions)
    result = store.delete_versions([(v.key, v.version_id) for v in versions])
    assert sorted(k for k, _ in result.deleted) == [f"d/{i}" for i in range(5)]
    assert result.errors == []
    assert list(store.list("d/")) == []
    again = store.delete_versions([("d/0", None)])
    assert again.errors == []


def test_s3_versions_and_batched_delete(make_s3_store: Callable[..., S3ObjectStore]) -> None:
    store = make_s3_store(versioning=True)
    calls: list[int] = []
    store._client.meta.events.register(
        "before-call.s3.DeleteObjects",
        lambda params, **_: calls.append(len(params["body"])),
    )
    store.put("v/key", b"1")
    store.put("v/key", b"2")
    store.delete_versions([("v/key", None)])  # leaves a delete marker
    versions = list(store.list_versions("v/"))
    assert sorted(v.is_delete_marker for v in versions) == [False, False, True]
    assert store.head("v/key") is None

    for i in range(1_003):
        store.put(f"many/{i:04d}", b"")
    items = [(v.key, v.version_id) for v in store.list_versions("")]
    assert len(items) == 1_006
    calls.clear()
    result = store.delete_versions(items)
    assert len(calls) == 2, "1,006 versions must go in two DeleteObjects requests"
    assert result.errors == []
    assert len(result.deleted) == 1_006
    assert list(store.list_versions("")) == []


@pytest.mark.parametrize(
    "key", ["../escape", "a/../../b", "/etc/passwd", "a//b", "a/./b", "nul\x00"]
)
def test_local_store_refuses_escaping_keys(tmp_path: Path, key: str) -> None:
    store = LocalObjectStore(tmp_path / "root", create=True)
    with pytest.raises(InvalidKey):
        store.put(key, b"x")
    with pytest.raises(InvalidKey):
        store.get(key)
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "b").exists()


def test_local_store_refuses_symlink_escape(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    store = LocalObjectStore(root)
    with pytest.raises(InvalidKey):
        store.get("link/secret")
    with pytest.raises(InvalidKey):
        store.put("link/new", b"x")
    assert not (outside / "new").exists()
    assert [i.key for i in store.list("")] == []


def test_local_store_write_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path, fsync=True)
    store.put("a/b", b"data")
    store.delete_versions([("a/b", "null")])
    assert list(tmp_path.iterdir()) == [], "deleting the last key prunes its empty directories"


def test_local_key_that_is_a_directory_is_a_storage_error(tmp_path: Path) -> None:
    store = LocalObjectStore(tmp_path)
    store.put("docs/a", b"1")
    with pytest.raises(StorageError, match="directory"):
        store.put("docs", b"2")
    assert [i.key for i in store.list("")] == ["docs/a"]


def test_missing_local_root_is_store_not_found(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFound, match="does not exist"):
        LocalObjectStore(tmp_path / "absent")


def test_missing_bucket_is_store_not_found(s3_endpoint: str) -> None:
    store = S3ObjectStore(
        bucket="no-such-bucket",
        endpoint_url=s3_endpoint,
        region=TEST_REGION,
        access_key_id="testing",
        secret_access_key="testing",
    )
    with pytest.raises(StoreNotFound, match="no-such-bucket"):
        list(store.list(""))


def test_wrong_credentials_are_credentials_error_without_secret(
    s3_endpoint_with_auth: str,
) -> None:
    secret = "very-secret-value-123"
    store = S3ObjectStore(
        bucket="whatever",
        endpoint_url=s3_endpoint_with_auth,
        region=TEST_REGION,
        access_key_id="AKIAUNKNOWNKEY000000",
        secret_access_key=secret,
        max_attempts=1,
    )
    with pytest.raises(CredentialsError) as caught:
        store.put("k", b"x")
    assert secret not in str(caught.value)
    assert "whatever" in str(caught.value)
    assert secret not in repr(store)


def test_unreachable_endpoint_is_endpoint_unreachable() -> None:
    store = S3ObjectStore(
        bucket="b",
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        region=TEST_REGION,
        access_key_id="testing",
        secret_access_key="testing",
        max_attempts=1,
        connect_timeout=1,
    )
    with pytest.raises(EndpointUnreachable, match="unreachable"):
        store.get("k")


def test_a_killed_writers_temporary_file_is_hidden_from_readers_but_listed_for_deletion(
    tmp_path: Path,
) -> None:
    """A worker killed mid-write leaves `.agencyops-tmp-*` behind: encrypted bytes on disk.
    Readers never see it; a deletion lists it, removes it, and its verification listing is
    then truly empty."""
    store = LocalObjectStore(tmp_path, create=True)
    store.put("repo/chunks/aa", b"sealed chunk")
    leftover = tmp_path / "repo" / "chunks" / ".agencyops-tmp-0123abcd"
    leftover.write_bytes(b"half a sealed chunk")

    assert [info.key for info in store.list("repo/")] == ["repo/chunks/aa"]
    versions = [v.key for v in store.list_versions("repo/")]
    assert versions == ["repo/chunks/.agencyops-tmp-0123abcd", "repo/chunks/aa"]

    result = store.delete_versions((key, None) for key in versions)
    assert not result.errors
    assert list(store.list_versions("repo/")) == []
    assert not leftover.exists()
    # Writing under the reserved name is still refused.
    with pytest.raises(InvalidKey):
        store.put("repo/chunks/.agencyops-tmp-x", b"data")


def test_discarding_a_killed_restores_temporary_files_stays_inside_its_folder(
    tmp_path: Path,
) -> None:
    """A restore's retry clears the temporary files its killed attempt left in its own folder
    of a shared location; a neighbour whose name shares the folder's as a string prefix, and
    every other writer's folder, keep theirs."""
    store = LocalObjectStore(tmp_path, create=True)
    ours = [tmp_path / "restore-1" / ".agencyops-tmp-a", tmp_path / "restore-1/x/.agencyops-tmp-b"]
    theirs = [tmp_path / "restore-10" / ".agencyops-tmp-c", tmp_path / "repo/.agencyops-tmp-d"]
    for leftover in [*ours, *theirs]:
        leftover.parent.mkdir(parents=True, exist_ok=True)
        leftover.write_bytes(b"")

    assert store.discard_temporary_files("restore-1/") == 2
    assert [p.exists() for p in ours] == [False, False]
    assert [p.exists() for p in theirs] == [True, True]
    assert store.discard_temporary_files() == 2
