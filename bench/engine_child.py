"""Runs one engine operation in its own process, so its peak RSS is the engine's alone.

Prints one JSON line: seconds (excluding interpreter start-up), cpu_seconds (user + system CPU
of this process over the same span), maxrss_mb (ru_maxrss), hwm_mb
(VmHWM of this process image, which unlike ru_maxrss is not inherited across fork/exec), stats.
Keys come from the environment (BENCH_MASTER_KEY, hex): the benchmark's throwaway key.

The target store connects through the egress guard, as the application's stores do, so the
engine is measured under the policy (bench.run allows 127.0.0.1, where its moto server listens,
through AGENCYOPS_EGRESS_ALLOW).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

from backups.engine import (
    backup,
    init_repository,
    list_snapshots,
    load_data_key,
    load_manifest,
    restore,
)
from backups.storage import LocalObjectStore, S3ObjectStore
from backups.storage.s3 import GuardedConnect
from bench.tools import vm_hwm_mb
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY

BASE = "agencyops/org/client/dataset"


def raw_put(endpoint: str, directory: str, threads: int) -> dict[str, object]:
    """The endpoint's limit: every file put once, in parallel, with nothing else done."""
    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
        # The same checksum settings as S3ObjectStore, so the comparison is like for like.
        config=Config(
            max_pool_connections=threads,
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )
    client.create_bucket(Bucket="raw")
    root = Path(directory)
    names = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

    def put(name: str) -> None:
        client.put_object(Bucket="raw", Key=name, Body=(root / name).read_bytes())

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, names))
    return {"files": len(names)}


def _guarded_connect() -> GuardedConnect:
    """kernel.egress.guarded_connect with the operator's allow list from the environment.
    This child is no Django process: the one setting the guard reads is all it configures."""
    from django.conf import settings

    from kernel.env import env_list

    if not settings.configured:
        settings.configure(AGENCYOPS_EGRESS_ALLOW=env_list("AGENCYOPS_EGRESS_ALLOW", []))
    from kernel.egress import guarded_connect

    return guarded_connect


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=["init", "backup", "restore", "raw-put"])
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()

    master_key = bytes.fromhex(os.environ["BENCH_MASTER_KEY"])
    target = S3ObjectStore(
        bucket=args.bucket,
        endpoint_url=args.endpoint,
        region=TEST_REGION,
        access_key_id=TEST_ACCESS_KEY_ID,
        secret_access_key=TEST_SECRET_ACCESS_KEY,
        max_pool_connections=args.threads,
        connect=_guarded_connect(),
    )
    started = time.perf_counter()
    cpu_started = time.process_time()
    stats: dict[str, object] = {}
    if args.op == "raw-put":
        stats = raw_put(args.endpoint, args.dir, args.threads)
    elif args.op == "init":
        target.create_bucket()
        init_repository(target, BASE, master_key, os.urandom(32))
    elif args.op == "backup":
        data_key = load_data_key(target, BASE, master_key)
        snapshots = list_snapshots(target, BASE)
        parent = load_manifest(target, BASE, data_key, snapshots[-1].id) if snapshots else None
        result = backup(
            LocalObjectStore(args.dir),
            "",
            [(target, BASE)],
            data_key,
            parent,
            threads=args.threads,
        )
        stats = dataclasses.asdict(result.stats)
    else:
        data_key = load_data_key(target, BASE, master_key)
        latest = list_snapshots(target, BASE)[-1].id
        result_r = restore(
            target,
            BASE,
            data_key,
            latest,
            # No fsync for the scratch restore, like rclone and restic (they do not fsync either).
            LocalObjectStore(args.dir, create=True, fsync=False),
            "",
            threads=args.threads,
        )
        stats = dataclasses.asdict(result_r)
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    maxrss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "maxrss_mb": maxrss_mb,
        "hwm_mb": vm_hwm_mb(),
        "stats": stats,
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
