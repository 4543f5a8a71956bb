"""Deletion benchmark section: a dataset of 20,000 object versions spread over two versioned
targets on moto's S3 server, deleted by `deletion_request_execute` (re-list, batched
multi-object deletes of every version, key destruction, verification listing, certificate),
next to raw batched `delete_objects` of the same versions on the same endpoint.

`section_deletion(bench)` is a section function for bench.run's SECTIONS (not wired there: the
issue's brief leaves bench/run.py alone). It runs this module as a child process
(`python -m bench.deletion`) on a fresh SQLite database in a temporary AGENCYOPS_VAR_DIR,
against `bench.endpoint` (or its own moto server), and stores its figures in
`bench.sections["deletion"]`. Goal: versions deleted per second >= 0.8 of raw.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

VERSIONS = 20_000
TARGETS = 2
VERSIONS_PER_KEY = 2  # every key has two versions, so half as many keys as versions
GOAL_RATIO = 0.8


def section_deletion(bench: Any) -> dict[str, Any]:
    """Run the measurement in a child process; record and return it."""
    with tempfile.TemporaryDirectory(prefix="bench-deletion-") as var_dir:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
        env.update(AGENCYOPS_VAR_DIR=var_dir, DJANGO_SETTINGS_MODULE="agencyops.settings")
        if bench is not None:
            env["BENCH_S3_ENDPOINT"] = bench.endpoint
        proc = subprocess.run(
            [sys.executable, "-m", "bench.deletion"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(f"deletion bench failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    result["goals"] = {"ratio_to_raw>=0.8": result["ratio_to_raw"] >= GOAL_RATIO}
    if bench is not None:
        bench.sections["deletion"] = result
    return result


def _client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        config=Config(max_pool_connections=32),
    )


def _fill(client: Any, bucket: str, prefix: str, versions: int) -> None:
    """`versions` object versions under `prefix`, VERSIONS_PER_KEY per key, 32 at a time."""
    keys = [f"{prefix}chunks/{i:06d}" for i in range(versions // VERSIONS_PER_KEY)]

    def put(key: str) -> None:
        for n in range(VERSIONS_PER_KEY):
            client.put_object(Bucket=bucket, Key=key, Body=b"v%d" % n)

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, keys))


def _raw_delete(client: Any, bucket: str, prefix: str) -> int:
    """The baseline: list every version, delete_objects 1,000 at a time."""
    deleted = 0
    pending: list[dict[str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        items = [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        pending.extend({"Key": item["Key"], "VersionId": item["VersionId"]} for item in items)
    for start in range(0, len(pending), 1000):
        batch = pending[start : start + 1000]
        client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        deleted += len(batch)
    return deleted


def _actor(user: Any) -> Any:
    from kernel.tenancy import actor_for_user

    actor = actor_for_user(user)
    if actor is None:
        raise RuntimeError(f"{user} belongs to no organization")
    return actor


def _measure(endpoint: str) -> dict[str, Any]:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from backups.services import repository_base

    client = _client(endpoint)
    actor, approver, dataset, targets = _bench_dataset(client, endpoint)
    per_target = VERSIONS // TARGETS
    prefixes = [(t.bucket, repository_base(t, dataset) + "/") for t in targets]
    # Raw first: moto slows as it accumulates state, so the order favours raw.
    raw = _time_raw(client, prefixes, per_target)
    ours = _time_ours(client, prefixes, per_target, actor=actor, approver=approver, dataset=dataset)
    ours_rate, raw_rate = VERSIONS / ours, VERSIONS / raw
    return {
        "versions": VERSIONS,
        "targets": TARGETS,
        "ours_seconds": round(ours, 3),
        "ours_versions_per_second": round(ours_rate, 1),
        "raw_seconds": round(raw, 3),
        "raw_versions_per_second": round(raw_rate, 1),
        "ratio_to_raw": round(ours_rate / raw_rate, 3),
        "includes": "claim, re-list, batched deletes, key destruction, verification listing, "
        "certificate (ours); listing and batched deletes (raw)",
    }


def _bench_dataset(client: Any, endpoint: str) -> tuple[Any, Any, Any, list[Any]]:
    """An organization with two admins, its client's dataset on a shared primary bucket, and
    the TARGETS versioned buckets every backup policy points at: (actor, approver, dataset,
    targets)."""
    from backups.models import BackupPolicy
    from backups.services import policy_update
    from clients import services as clients_services
    from tests.factories import UserFactory

    owner, second = UserFactory(username="bench-owner"), UserFactory(username="bench-admin")
    org = clients_services.organization_create(name="Bench", owner=owner, slug="bench-del")
    actor = _actor(owner)
    clients_services.membership_add(actor=actor, user=second, role="admin")
    approver = _actor(second)
    agency_client = clients_services.client_create(actor=actor, name="Bench client")
    primary, *targets = _versioned_locations(client, endpoint, actor)
    for policy in BackupPolicy.objects.filter(organization=org):
        policy_update(actor=actor, policy=policy, targets=targets)
    # The primary bucket is shared: the client keeps its data in its own folder there.
    clients_services.namespace_assign(
        actor=actor, location=primary, client=agency_client, path="datasets"
    )
    dataset = clients_services.dataset_register(
        actor=actor,
        client=agency_client,
        name="Big dataset",
        kind="raw_client_data",
        classification="confidential",
        location=primary,
        path="datasets/big",
    )
    return actor, approver, dataset, targets


def _versioned_locations(client: Any, endpoint: str, actor: Any) -> list[Any]:
    """TARGETS + 1 fresh versioned buckets on the endpoint, each a storage location."""
    from clients import services as clients_services
    from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY

    credentials = {"access_key_id": TEST_ACCESS_KEY_ID, "secret_access_key": TEST_SECRET_ACCESS_KEY}
    locations = []
    for i in range(TARGETS + 1):
        bucket = f"bench-del-{i}-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        locations.append(
            clients_services.location_create(
                actor=actor,
                name=f"bucket {i}",
                kind="s3",
                provider="minio",
                endpoint_url=endpoint,
                region=TEST_REGION,
                bucket=bucket,
                prefix="backups",
                credentials=credentials,
            )
        )
    return locations


def _time_raw(client: Any, prefixes: list[tuple[str, str]], per_target: int) -> float:
    """Fill every target, then time raw batched deletes of all its versions (seconds)."""
    for bucket, prefix in prefixes:
        _fill(client, bucket, prefix, per_target)
    started = time.perf_counter()
    raw_deleted = sum(_raw_delete(client, bucket, prefix) for bucket, prefix in prefixes)
    raw = time.perf_counter() - started
    if raw_deleted != VERSIONS:
        raise RuntimeError(f"raw deleted {raw_deleted}, expected {VERSIONS}")
    return raw


def _time_ours(
    client: Any,
    prefixes: list[tuple[str, str]],
    per_target: int,
    *,
    actor: Any,
    approver: Any,
    dataset: Any,
) -> float:
    """Fill every target again, request and approve the dataset's deletion, then time its
    execution to a verified deletion (seconds)."""
    from lifecycle import services

    for bucket, prefix in prefixes:
        _fill(client, bucket, prefix, per_target)
    request = services.deletion_request_create(
        actor=actor, client=dataset.client, dataset=dataset, reason="bench"
    )
    services.deletion_request_approve(actor=approver, request=request, enqueue=False)
    started = time.perf_counter()
    done = services.deletion_request_execute(str(request.public_id))
    ours = time.perf_counter() - started
    if done.state != "verified" or done.versions_deleted != VERSIONS:
        raise RuntimeError(f"deletion did not verify: {done.state} {done.error}")
    return ours


def main() -> None:
    # The stores connect through the egress guard: allow the loopback moto server (bench.run
    # sets the same for its children; this covers `python -m bench.deletion` on its own).
    os.environ["AGENCYOPS_EGRESS_ALLOW"] = "127.0.0.1"
    from kernel.tenancy import system_scope

    # The child is the operator's process, as manage.py is: it sees every organization (the
    # deletion runs as its task would, in the system scope).
    endpoint = os.environ.get("BENCH_S3_ENDPOINT")
    if endpoint:
        with system_scope():
            print(json.dumps(_measure(endpoint)))
        return
    from tests.s3server import moto_server

    with moto_server() as url, system_scope():
        print(json.dumps(_measure(url)))


if __name__ == "__main__":
    main()
