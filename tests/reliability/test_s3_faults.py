"""Backups, verifies and restores through a proxy that breaks 5% of S3 requests.

The faults (503 SlowDown, 500, connection resets after the server acted, truncated bodies,
delays) come from tests/faultproxy.py, seeded so a failure can be replayed. Every round must
complete: a snapshot whose every chunk verifies, and a restore byte-identical to the source.

`make test` runs a bounded number of rounds over the small sample tree; `make reliability` sets
AGENCYOPS_RELIABILITY_FULL=1 for 20 rounds over the benchmark data set (about 255 MB), and
writes the counts to var/reliability/s3_faults.json for the README's reliability table.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from backups.models import RunStatus, Snapshot
from backups.services import (
    backup_run_create,
    backup_run_execute,
    snapshot_verify,
)
from backups.storage import StorageError
from bench import dataset as bench_dataset
from tests.backups.conftest import Agency, sample_files, write_files
from tests.faultproxy import FaultProxy

FULL = os.environ.get("AGENCYOPS_RELIABILITY_FULL") == "1"
ROUNDS = 20 if FULL else 4
FAULT_RATE = 0.05
RESULTS = Path(__file__).resolve().parents[2] / "var" / "reliability"


def _record(name: str, figures: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures = {
        "full": FULL,
        "recorded_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        **figures,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def _source(agency: Agency, tmp_path: Path) -> tuple[Any, dict[str, bytes] | None, Path]:
    """The dataset and its files: the benchmark set in full mode, else the sample tree."""
    if FULL:
        dataset = agency.dataset("Benchmark data")
        root = agency.source_dir(dataset)
        bench_dataset.generate(root)
        return dataset, None, root
    files = sample_files()
    dataset = agency.dataset("Flaky-link data", files=files)
    return dataset, files, agency.source_dir(dataset)


def _identical(left: Path, right: Path) -> bool:
    names = sorted(p.relative_to(left).as_posix() for p in left.rglob("*") if p.is_file())
    other = sorted(p.relative_to(right).as_posix() for p in right.rglob("*") if p.is_file())
    if names != other:
        return False
    for name in names:
        with (left / name).open("rb") as a, (right / name).open("rb") as b:
            while True:
                x, y = a.read(1 << 20), b.read(1 << 20)
                if x != y:
                    return False
                if not x:
                    break
    return True


@pytest.mark.integration
def test_backups_verifies_and_restores_complete_through_five_percent_faults(
    agency: Agency, s3_endpoint: str, tmp_path: Path
) -> None:
    with FaultProxy(s3_endpoint, rate=FAULT_RATE, seed=20261126) as proxy:
        target = agency.s3_location("Offsite over a flaky link", endpoint=proxy.url)
        dataset, files, root = _source(agency, tmp_path)
        completed = 0
        for round_number in range(ROUNDS):
            # Each round changes the data, so every backup uploads something new.
            if files is not None:
                files[f"round/{round_number}.bin"] = os.urandom(5000 + round_number)
                write_files(root, files)
            else:
                (root / "rounds").mkdir(exist_ok=True)
                (root / "rounds" / f"{round_number}.bin").write_bytes(os.urandom(1 << 20))

            run = backup_run_create(
                dataset=dataset, trigger="manual", targets=[target], enqueue=False
            )
            done = backup_run_execute(str(run.public_id), final_attempt=True)
            assert done is not None
            assert done.status == RunStatus.SUCCEEDED, (round_number, done.error)

            snapshot = Snapshot.objects.filter(dataset=dataset, location=target).first()
            assert snapshot is not None
            assert snapshot.run_id == run.pk
            report = snapshot_verify(snapshot)
            assert report.ok, (round_number, report.missing, report.corrupt)
            assert report.chunks_read == report.chunks_referenced

            destination = tmp_path / f"restore-{round_number}"
            restored = agency.restore(snapshot, destination)
            if files is not None:
                assert restored == files
            else:
                assert _identical(root, destination)
                shutil.rmtree(destination)
            completed += 1

    # The proxy really broke requests, of every kind, and nothing was lost.
    assert proxy.faults >= 5, dict(proxy.injected)
    assert completed == ROUNDS
    _record(
        "s3_faults",
        {
            "rounds": ROUNDS,
            "completed_byte_identical": completed,
            "fault_rate": FAULT_RATE,
            "requests": proxy.requests,
            "faults_injected": dict(proxy.injected),
        },
    )


@pytest.mark.integration
def test_a_truncated_or_reset_body_is_resumed_not_returned_short(
    agency: Agency, s3_endpoint: str
) -> None:
    """Every GET broken midway, once: the store's reader asks for the rest and returns the
    whole object, or the exact error when the object changes in between."""
    payload = os.urandom(3 * 1024 * 1024 + 17)
    bucket = f"resume-{os.getpid()}"
    agency.raw_store(bucket).create_bucket()
    agency.raw_store(bucket).put("object.bin", payload)
    for kind in ("truncate", "reset"):
        with FaultProxy(s3_endpoint, rate=1.0, seed=5, kinds=(kind,)) as proxy:
            store = agency.raw_store(bucket, proxy.url)

            # The first response is cut; after that the proxy behaves.
            def heal(store: Any = store, proxy: FaultProxy = proxy) -> bytes:
                with store.open("object.bin") as body:
                    proxy.rate = 0.0
                    return bytes(body.read())

            assert heal() == payload
            assert proxy.injected[kind] == 1


@pytest.mark.integration
def test_reading_an_object_replaced_midway_fails_instead_of_mixing_versions(
    agency: Agency, s3_endpoint: str
) -> None:
    bucket = f"mixed-{os.getpid()}"
    direct = agency.raw_store(bucket)
    direct.create_bucket()
    direct.put("object.bin", b"A" * 200_000)
    with FaultProxy(s3_endpoint, rate=1.0, seed=9, kinds=("truncate",)) as proxy:
        store = agency.raw_store(bucket, proxy.url)
        with store.open("object.bin") as body:
            proxy.rate = 0.0
            direct.put("object.bin", b"B" * 200_000)
            with pytest.raises(StorageError, match=r"changed while it was read|PreconditionFailed"):
                body.read()
