"""Runs whose worker died are resumed exactly once; runs that keep dying are failed."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from backups.models import BackupRun
from backups.services import RunInProgress, runs_recover
from backups.services.runs import work as runs_module
from kernel.claims import STALE_AFTER
from tests.conftest import World


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    monkeypatch.setattr(
        runs_module, "_enqueue_backup", lambda run: calls.append(str(run.public_id))
    )
    return calls


def _run(world: World, **fields: Any) -> BackupRun:
    return BackupRun.objects.create(
        organization=world.org, dataset=world.dataset, trigger="schedule", **fields
    )


def test_claim_wins_once_and_respects_a_live_worker(world: World) -> None:
    run = _run(world)
    claimed = runs_module._claim(BackupRun, str(run.public_id))
    assert claimed is not None
    assert claimed.status == "running"
    assert claimed.attempts == 1
    with pytest.raises(RunInProgress):
        runs_module._claim(BackupRun, str(run.public_id))
    BackupRun.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER - timedelta(seconds=1)
    )
    resumed = runs_module._claim(BackupRun, str(run.public_id))
    assert resumed is not None
    assert resumed.attempts == 2
    BackupRun.objects.filter(pk=run.pk).update(status="succeeded")
    assert runs_module._claim(BackupRun, str(run.public_id)) is None  # finished: nothing to do


def test_recover_requeues_stale_and_lost_runs(world: World, enqueued: list[str]) -> None:
    now = timezone.now()
    stale = _run(world, status="running", attempts=1, heartbeat_at=now - timedelta(minutes=2))
    alive = _run(world, status="running", attempts=1, heartbeat_at=now)
    lost = _run(world, status="pending")
    BackupRun.objects.filter(pk=lost.pk).update(created_at=now - timedelta(minutes=10))
    fresh = _run(world, status="pending")
    exhausted = _run(
        world,
        status="running",
        attempts=runs_module.MAX_ATTEMPTS,
        heartbeat_at=now - timedelta(minutes=2),
    )
    counts = runs_recover(now)
    assert counts == {"requeued": 2, "failed": 1}
    assert set(enqueued) == {str(stale.public_id), str(lost.public_id)}
    assert str(alive.public_id) not in enqueued
    assert str(fresh.public_id) not in enqueued
    exhausted.refresh_from_db()
    assert exhausted.status == "failed"
    assert "stopped 5 times" in exhausted.error
