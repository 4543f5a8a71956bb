"""Fixtures for the engine and storage tests: a real moto server, fresh buckets, sample trees."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable

import pytest

from backups.engine import generate_data_key, init_repository
from backups.storage import LocalObjectStore, ObjectStore, S3ObjectStore
from tests.s3server import (
    TEST_ACCESS_KEY_ID,
    TEST_REGION,
    TEST_SECRET_ACCESS_KEY,
    s3_endpoint,
    s3_endpoint_with_auth,
)

__all__ = ["s3_endpoint", "s3_endpoint_with_auth"]

# Small chunks so multi-chunk files stay small and fast in tests.
CHUNK = 64 * 1024
MARKER = b"PLAINTEXT-MARKER-7f3a9c"


@pytest.fixture
def make_s3_store(s3_endpoint: str) -> Callable[..., S3ObjectStore]:
    """A factory of stores on fresh buckets, so tests never see each other's objects."""

    def make(*, versioning: bool = False) -> S3ObjectStore:
        store = S3ObjectStore(
            bucket=f"t-{uuid.uuid4().hex[:20]}",
            endpoint_url=s3_endpoint,
            region=TEST_REGION,
            access_key_id=TEST_ACCESS_KEY_ID,
            secret_access_key=TEST_SECRET_ACCESS_KEY,
            max_pool_connections=16,
            max_attempts=2,
        )
        store.create_bucket(versioning=versioning)
        return store

    return make


@pytest.fixture
def make_local_store(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], LocalObjectStore]:
    def make() -> LocalObjectStore:
        return LocalObjectStore(tmp_path_factory.mktemp("store"), fsync=False)

    return make


@pytest.fixture(params=["local", "s3"])
def make_store(
    request: pytest.FixtureRequest,
    make_local_store: Callable[[], LocalObjectStore],
    make_s3_store: Callable[..., S3ObjectStore],
) -> Callable[[], ObjectStore]:
    """Either kind of store, so each test runs against both backends."""
    if request.param == "local":
        return make_local_store
    return make_s3_store


@pytest.fixture
def master_key() -> bytes:
    return os.urandom(32)


@pytest.fixture
def data_key() -> bytes:
    return generate_data_key()


@pytest.fixture
def init_target(master_key: bytes, data_key: bytes) -> Callable[[ObjectStore, str], None]:
    def init(store: ObjectStore, base: str) -> None:
        init_repository(store, base, master_key, data_key)

    return init


def sample_tree() -> dict[str, bytes]:
    """Edge cases a restore must reproduce byte for byte."""
    rng = random.Random(1234)
    big = bytearray(rng.randbytes(CHUNK * 2 + CHUNK // 2 + 7))
    # The marker straddles a chunk boundary, so a per-chunk leak could not hide it.
    big[CHUNK - 5 : CHUNK - 5 + len(MARKER)] = MARKER
    deep = "/".join(f"level{i}" for i in range(12)) + "/deep file.txt"
    return {
        "empty.txt": b"",
        "sub/also-empty": b"",
        # Cyrillic on purpose: non-Latin names must survive the round trip.
        "ünïcödé/файл с пробелами.txt": b"hello " + MARKER + " wörld".encode(),  # noqa: RUF001
        "spaces in name/a b c.bin": rng.randbytes(1000),
        deep: MARKER * 3,
        "big.bin": bytes(big),
        "exact.bin": rng.randbytes(CHUNK * 2),
        "dup/one.bin": b"same content " * 500,
        "dup/two.bin": b"same content " * 500,
        "日本語/テスト.md": "# 見出し\n".encode() + MARKER,
    }


def write_tree(store: ObjectStore, prefix: str, tree: dict[str, bytes]) -> None:
    for path, data in tree.items():
        store.put(f"{prefix}/{path}" if prefix else path, data)


def read_tree(store: ObjectStore, prefix: str) -> dict[str, bytes]:
    start = f"{prefix}/" if prefix else ""
    return {info.key[len(start) :]: store.get(info.key) for info in store.list(start)}
