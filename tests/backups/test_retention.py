"""Retention on real repositories (local directories): keep what the policy names, nothing else;
never under legal hold; every kept snapshot still verifies and restores."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backups import engine
from backups.engine.manifest import manifest_time
from backups.models import BackupPolicy, RunTarget, Snapshot
from backups.services import (
    TransientFailure,
    backup_run_create,
    backup_run_execute,
    dataset_data_key,
    dataset_prune,
    policies_create_defaults,
    protection_create,
    repository_base,
    retention_policy_for,
    store_for_location,
)
from backups.services.policies import dataset_key_context
from backups.services.repository_locks import PRUNE_LOCK_STALE_AFTER, prune_lock_acquire
from backups.storage import LocalObjectStore
from clients import services as inventory
from kernel.crypto import master_key
from kernel.tenancy import Actor
from tests.conftest import World


@pytest.fixture
def repo(world: World, org_root: Path) -> dict[str, Any]:
    tmp_path = org_root
    source_dir = tmp_path / "primary"
    (source_dir / "ds").mkdir(parents=True)
    target_dir = tmp_path / "target"
    target_dir.mkdir()
    system = Actor.system(world.org)
    primary = inventory.location_create(
        actor=system, name="disk", kind="local", provider="filesystem", prefix=str(source_dir)
    )
    target = inventory.location_create(
        actor=system,
        name="backup disk",
        kind="local",
        provider="filesystem",
        prefix=str(target_dir),
    )
    inventory.namespace_assign(actor=system, location=primary, client=world.client, path="ds")
    dataset = inventory.dataset_register(
        actor=system,
        client=world.client,
        name="labels",
        kind="labeled_training_set",
        location=primary,
        path="ds",
    )
    policy = BackupPolicy.objects.create(
        organization=world.org, name="two daily", frequency="daily", keep_daily=2
    )
    protection = protection_create(dataset)
    protection.policy = policy
    protection.save()
    policies_create_defaults(world.org)
    return {
        "dataset": dataset,
        "target": target,
        "source": source_dir / "ds",
        "protection": protection,
        "policy": policy,
    }


def _snapshot_at(repo: dict[str, Any], when: datetime, content: str) -> Snapshot:
    dataset, target = repo["dataset"], repo["target"]
    (repo["source"] / "file.txt").write_text(content)
    store = store_for_location(target)
    base = repository_base(target, dataset)
    key = dataset_data_key(dataset)
    engine.init_repository(store, base, master_key(), key, context=dataset_key_context(dataset))
    source = store_for_location(dataset.location)
    result = engine.backup(source, "ds", [(store, base)], key, now=when)
    return Snapshot.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        location=target,
        manifest_id=result.manifest_id,
        taken_at=manifest_time(result.manifest_id),
        files=result.manifest.file_count,
    )


def test_prune_keeps_exactly_the_named_snapshots(repo: dict[str, Any], tmp_path: Path) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    made = [_snapshot_at(repo, start + timedelta(days=i), f"day {i}") for i in range(5)]
    report = dataset_prune(repo["dataset"], repo["target"])
    assert report.errors == []
    assert (report.kept, report.forgotten) == (2, 3)
    alive = Snapshot.objects.filter(dataset=repo["dataset"], forgotten_at__isnull=True)
    assert {s.pk for s in alive} == {made[3].pk, made[4].pk}
    store = store_for_location(repo["target"])
    base = repository_base(repo["target"], repo["dataset"])
    listed = {ref.id for ref in engine.list_snapshots(store, base)}
    assert listed == {made[3].manifest_id, made[4].manifest_id}
    key = dataset_data_key(repo["dataset"])
    for snapshot in alive:
        assert engine.verify(store, base, key, snapshot.manifest_id, read_data_subset=1.0).ok
    out = tmp_path / "restored"
    engine.restore(store, base, key, made[3].manifest_id, LocalObjectStore(out, create=True))
    assert (out / "file.txt").read_text() == "day 3"


def test_legal_hold_suspends_pruning(repo: dict[str, Any]) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i in range(4):
        _snapshot_at(repo, start + timedelta(days=i), f"day {i}")
    repo["protection"].pruning_suspended = True
    repo["protection"].save()
    report = dataset_prune(repo["dataset"], repo["target"])
    assert report.skipped.startswith("legal hold")
    store = store_for_location(repo["target"])
    assert len(engine.list_snapshots(store, repository_base(repo["target"], repo["dataset"]))) == 4
    assert Snapshot.objects.filter(forgotten_at__isnull=False).count() == 0


def test_keep_forever_and_unlimited_map_to_the_engine(repo: dict[str, Any]) -> None:
    policy: BackupPolicy = repo["policy"]
    policy.keep_forever = True
    assert retention_policy_for(policy) is None
    policy.keep_forever = False
    policy.keep_daily, policy.keep_monthly = 30, -1
    rules = retention_policy_for(policy)
    assert rules is not None
    assert rules.keep_daily == 30
    assert rules.keep_monthly >= 10**9
    policy.keep_daily = policy.keep_monthly = 0
    assert retention_policy_for(policy) is None  # no rule: nothing may be pruned


def _locks(repo: dict[str, Any]) -> list[str]:
    store = store_for_location(repo["target"])
    base = repository_base(repo["target"], repo["dataset"])
    return [info.key for info in store.list(f"{base}/locks/")]


def test_a_prune_releases_its_lock_and_steps_back_from_a_running_backup(
    repo: dict[str, Any],
) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i in range(3):
        _snapshot_at(repo, start + timedelta(days=i), f"day {i}")
    run = backup_run_create(
        dataset=repo["dataset"], trigger="manual", targets=[repo["target"]], enqueue=False
    )
    report = dataset_prune(repo["dataset"], repo["target"])
    assert report.skipped == "a backup of this target is running"
    assert report.forgotten == 0
    assert _locks(repo) == []  # the lock came and went
    RunTarget.objects.filter(run=run).update(active=False)
    report = dataset_prune(repo["dataset"], repo["target"])
    assert (report.kept, report.forgotten) == (2, 1)
    assert _locks(repo) == []


def test_a_backup_waits_while_a_prune_holds_the_repository(repo: dict[str, Any]) -> None:
    """The other half of the exclusion: a backup that finds a live prune lock is handed back
    for a retry (no snapshot, nothing half-written referenced); a stale lock is ignored."""
    _snapshot_at(repo, datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "day 0")
    store = store_for_location(repo["target"])
    base = repository_base(repo["target"], repo["dataset"])
    lock = prune_lock_acquire(store, base)
    (repo["source"] / "file.txt").write_text("new content")
    before = Snapshot.objects.count()

    run = backup_run_create(
        dataset=repo["dataset"], trigger="manual", targets=[repo["target"]], enqueue=False
    )
    with pytest.raises(TransientFailure, match="being pruned"):
        backup_run_execute(str(run.public_id), final_attempt=False)
    run.refresh_from_db()
    assert run.status == "pending"
    assert Snapshot.objects.count() == before

    # A lock older than the stale limit belongs to a dead worker: the backup goes ahead.
    old = (datetime.now(UTC) - PRUNE_LOCK_STALE_AFTER - timedelta(minutes=1)).timestamp()
    os.utime(Path(store.root) / lock, (old, old))
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    assert done.status == "succeeded", done.error
    assert Snapshot.objects.count() == before + 1


def test_a_finishing_prune_clears_the_lock_of_a_prune_that_died(repo: dict[str, Any]) -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    for i in range(3):
        _snapshot_at(repo, start + timedelta(days=i), f"day {i}")
    store = store_for_location(repo["target"])
    base = repository_base(repo["target"], repo["dataset"])
    dead = prune_lock_acquire(store, base)  # a worker killed mid-prune left this
    earlier = (datetime.now(UTC) - timedelta(minutes=10)).timestamp()
    os.utime(Path(store.root) / dead, (earlier, earlier))
    report = dataset_prune(repo["dataset"], repo["target"])
    assert (report.kept, report.forgotten) == (2, 1)
    assert _locks(repo) == []
