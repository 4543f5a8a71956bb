"""Buckets with an Object Lock default retention refuse puts without a checksum: every put of
the store carries one, so such a bucket works as a backup target (over moto's HTTP server)."""

from __future__ import annotations

import os
import uuid

import botocore.exceptions
import pytest

from backups.engine import backup, init_repository, restore, verify
from backups.storage import LocalObjectStore, S3ObjectStore
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY


def _locked_store(endpoint: str) -> S3ObjectStore:
    store = S3ObjectStore(
        bucket=f"lock-{uuid.uuid4().hex[:16]}",
        endpoint_url=endpoint,
        region=TEST_REGION,
        access_key_id=TEST_ACCESS_KEY_ID,
        secret_access_key=TEST_SECRET_ACCESS_KEY,
        part_size=5 * 1024 * 1024,
    )
    store.client.create_bucket(Bucket=store.bucket, ObjectLockEnabledForBucket=True)
    store.client.put_object_lock_configuration(
        Bucket=store.bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    return store


def test_a_default_retention_bucket_refuses_a_put_without_checksum(s3_endpoint: str) -> None:
    store = _locked_store(s3_endpoint)
    with pytest.raises(botocore.exceptions.ClientError, match="Content-MD5"):
        store.client.put_object(Bucket=store.bucket, Key="plain", Body=b"x")


def test_backup_restore_and_verify_on_a_default_retention_bucket(
    s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = _locked_store(s3_endpoint)
    source = LocalObjectStore(tmp_path_factory.mktemp("src"))
    files = {"small.json": b'{"a": 1}', "big.bin": os.urandom(12 * 1024 * 1024)}
    for name, data in files.items():
        source.put(name, data)
    # A large object goes up in parts: each part and the upload carry the checksum too.
    source.put("huge.bin", os.urandom(11 * 1024 * 1024))
    master, data_key = os.urandom(32), os.urandom(32)
    init_repository(store, "r", master, data_key)
    result = backup(source, "", [(store, "r")], data_key, pack_size=32 * 1024 * 1024)
    store.put("multipart-probe", source.open("huge.bin"))
    assert store.head("multipart-probe") is not None
    assert verify(store, "r", data_key, result.manifest_id, read_data_subset=1.0).ok
    destination = LocalObjectStore(tmp_path_factory.mktemp("out"))
    restore(store, "r", data_key, result.manifest_id, destination, "")
    assert destination.get("big.bin") == files["big.bin"]
    assert destination.get("small.json") == files["small.json"]
