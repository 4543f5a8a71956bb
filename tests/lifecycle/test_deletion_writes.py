"""A deletion writes the lower apps' tables through their services: the datasets' state changes
send `dataset_state_changed` (and reach the audit trail), and the backup app, which follows a
dataset's state to its default policy, never brings back the schedules a deletion stopped. The
deletion's recovery beat finds what the one claim rule (kernel.claims) calls stuck."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.utils import timezone

from backups.models import BackupSchedule
from backups.services import policy_update, protection_get
from backups.services.erasure import schedules_stop
from clients import signals
from clients.models import Dataset, LifecycleState
from clients.services.states import dataset_state_set
from kernel.claims import STALE_AFTER
from kernel.exceptions import Forbidden
from kernel.tenancy import Actor, actor_for_user
from lifecycle import services
from lifecycle.models import DeletionItem, DeletionRequest
from lifecycle.services.deletion import execution
from tests.conftest import World
from tests.lifecycle.deletion_support import Scene, build_scene
from tests.s3server import s3_endpoint

__all__ = ["s3_endpoint"]


def _actor(user: Any) -> Actor:
    actor = actor_for_user(user)
    assert actor is not None
    return actor


class Crash(Exception):
    pass


@pytest.fixture
def scene(db: Any, tmp_path: Path, s3_endpoint: str) -> Scene:
    return build_scene(tmp_path, s3_endpoint)


@pytest.fixture
def state_changes() -> Any:
    seen: list[tuple[str, str, str]] = []

    def _seen(sender: Any, dataset: Dataset, previous_state: str, **kwargs: Any) -> None:
        seen.append((dataset.name, previous_state, dataset.lifecycle_state))

    signals.dataset_state_changed.connect(_seen, dispatch_uid="test.state_changes")
    yield seen
    signals.dataset_state_changed.disconnect(dispatch_uid="test.state_changes")


def test_a_deletion_in_progress_leaves_no_schedule_after_the_state_changes(
    scene: Scene, state_changes: list[tuple[str, str, str]]
) -> None:
    dataset = scene.datasets[0]
    # Archived: the monthly policy. Its deletion_pending state's default is the daily policy,
    # whose targets would get schedules again if the backup app followed the state.
    dataset_state_set(actor=scene.agency.actor, dataset=dataset, state=LifecycleState.ARCHIVED)
    assert BackupSchedule.objects.filter(dataset=dataset).count() == len(scene.targets)
    request = services.deletion_request_create(
        actor=_actor(scene.lead), client=scene.agency.client, dataset=dataset, reason="asked"
    )
    services.deletion_request_approve(actor=_actor(scene.admin2), request=request, enqueue=False)
    in_progress: list[tuple[str, int]] = []

    def crash(item: DeletionItem, deleted: int) -> None:
        row = Dataset.objects.get(pk=dataset.pk)
        in_progress.append(
            (row.lifecycle_state, BackupSchedule.objects.filter(dataset=dataset).count())
        )
        raise Crash("worker killed after the first batch")

    with pytest.raises(Crash):
        services.deletion_request_execute(str(request.public_id), after_batch=crash)
    assert in_progress == [(LifecycleState.DELETION_PENDING, 0)]
    assert not BackupSchedule.objects.filter(dataset=dataset).exists()

    DeletionRequest.objects.filter(pk=request.pk).update(
        heartbeat_at=timezone.now() - STALE_AFTER - dt.timedelta(seconds=1)
    )
    done = services.deletion_request_execute(str(request.public_id))
    assert done.state == "verified", (done.error, done.verification)
    dataset.refresh_from_db()
    assert dataset.lifecycle_state == LifecycleState.DELETED
    assert not BackupSchedule.objects.filter(dataset=dataset).exists()
    # Each change was sent once (a resumed execution finds the state already set) ...
    assert state_changes == [
        (dataset.name, LifecycleState.ACTIVE, LifecycleState.ARCHIVED),
        (dataset.name, LifecycleState.ARCHIVED, LifecycleState.DELETION_PENDING),
        (dataset.name, LifecycleState.DELETION_PENDING, LifecycleState.DELETED),
    ]
    # ... and recorded like any other change of the dataset.
    recorded = [
        entry.changes_dict["lifecycle_state"]
        for entry in LogEntry.objects.get_for_object(dataset).order_by("timestamp", "pk")
        if "lifecycle_state" in entry.changes_dict
    ]
    assert recorded[-2:] == [
        [LifecycleState.ARCHIVED, LifecycleState.DELETION_PENDING],
        [LifecycleState.DELETION_PENDING, LifecycleState.DELETED],
    ]


def test_a_policy_edit_during_a_deletion_brings_no_schedule_back(scene: Scene) -> None:
    """The rule lives in schedules_sync itself, so no caller (a policy edit here) can undo the
    deletion's stop; a sibling on the same policy keeps its schedules."""
    pending, sibling = scene.datasets
    dataset_state_set(
        actor=scene.agency.actor, dataset=pending, state=LifecycleState.DELETION_PENDING
    )
    schedules_stop(datasets=[pending])
    policy = protection_get(sibling).policy
    assert policy is not None
    assert protection_get(pending).policy == policy
    policy_update(actor=scene.agency.actor, policy=policy, targets=scene.targets[:1])
    policy_update(actor=scene.agency.actor, policy=policy, targets=scene.targets)
    assert not BackupSchedule.objects.filter(dataset=pending).exists()
    assert BackupSchedule.objects.filter(dataset=sibling).count() == len(scene.targets)


def test_a_deleted_dataset_keeps_its_state_and_only_admins_set_states(world: World) -> None:
    admin = world.actor(world.admin)
    dataset_state_set(actor=admin, dataset=world.dataset, state=LifecycleState.DELETED)
    again = dataset_state_set(actor=admin, dataset=world.dataset, state=LifecycleState.ACTIVE)
    assert again.lifecycle_state == LifecycleState.DELETED
    with pytest.raises(Forbidden):
        dataset_state_set(
            actor=world.actor(world.lead), dataset=world.dataset_b, state=LifecycleState.ARCHIVED
        )


def test_recovery_enqueues_lost_approvals_and_dead_executions_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    enqueued: list[str] = []
    monkeypatch.setattr(execution, "execution_enqueue", enqueued.append)
    now = timezone.now()
    old = now - STALE_AFTER - dt.timedelta(seconds=1)

    def request(**fields: Any) -> DeletionRequest:
        return DeletionRequest.objects.create(
            organization=world.org, client=world.client, scope="client", reason="r", **fields
        )

    lost = request(state="approved", decided_at=old)
    request(state="approved", decided_at=now)  # its message is still on its way
    dead = request(state="executing", heartbeat_at=old)
    handed_back = request(state="executing", heartbeat_at=None)
    request(state="executing", heartbeat_at=now)  # a live worker holds it
    request(state="drafted")
    request(state="verified", heartbeat_at=None)
    recovered = services.deletions_recover(now)
    expected = {str(r.public_id) for r in (lost, dead, handed_back)}
    assert set(recovered) == expected
    assert set(enqueued) == expected
