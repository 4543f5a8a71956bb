"""Recording through the outbox: a pending row in the caller's transaction, drained into the
chain by the worker's task — once, in order, many events per commit, and never lost."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from agencyops.celery import app
from lifecycle import services, tasks
from lifecycle.models import AccessChainHead, AccessEvent, PendingAccessEvent
from lifecycle.services.access import outbox as access_outbox
from tests.conftest import World


@pytest.fixture
def sent(settings: Any, monkeypatch: Any) -> list[int]:
    """The worker path with the broker replaced by a list: the drain requests sent, in order."""
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False
    requests: list[int] = []
    monkeypatch.setattr(tasks.access_events_drain_task, "delay", requests.append)
    return requests


def _record(organization: Any, n: int = 1, **fields: Any) -> list[str]:
    """Record n events, each in a transaction of its own (as n requests would)."""
    ids = []
    for i in range(n):
        with transaction.atomic():
            ids.append(
                services.access_event_record(
                    organization=organization, action="restore", details={"i": i}, **fields
                )
            )
    return ids


def _chained(organization: Any) -> list[str]:
    return [
        str(pk)
        for pk in AccessEvent.objects.filter(organization=organization)
        .order_by("seq")
        .values_list("public_id", flat=True)
    ]


def test_record_writes_a_pending_event_and_asks_for_a_drain_after_commit(
    world: World, sent: list[int], run_on_commit: Any
) -> None:
    with run_on_commit():
        event_id = services.access_event_record(
            organization=world.org, action="restore", dataset=world.dataset
        )
        assert PendingAccessEvent.objects.filter(public_id=event_id).exists()
        assert sent == []  # nothing leaves before the transaction commits
    assert sent == [world.org.pk]
    assert not AccessEvent.objects.filter(public_id=event_id).exists()

    assert tasks.access_events_drain_task.run(world.org.pk) == 1  # the worker
    event = AccessEvent.objects.get(public_id=event_id)
    assert (event.seq, event.client_id, event.dataset_id) == (1, world.client.pk, world.dataset.pk)
    assert event.actor_kind == "system"
    assert not PendingAccessEvent.objects.exists()
    assert services.access_log_verify(world.org).ok


def test_a_rolled_back_action_leaves_no_pending_event_and_no_drain(
    world: World, sent: list[int], run_on_commit: Any
) -> None:
    with run_on_commit():
        try:
            with transaction.atomic():
                services.access_event_record(organization=world.org, action="restore")
                raise RuntimeError("the change failed")
        except RuntimeError:
            pass
    assert sent == []
    assert not PendingAccessEvent.objects.exists()
    assert tasks.access_events_drain_task.run(world.org.pk) == 0
    assert not AccessEvent.objects.filter(organization=world.org).exists()


def test_a_drain_run_twice_appends_each_event_once(
    world: World, sent: list[int], run_on_commit: Any
) -> None:
    with run_on_commit():
        ids = _record(world.org, 3)
    assert sent == [world.org.pk]  # three commits, one drain queued and not yet started
    assert tasks.access_events_drain_task.run(world.org.pk) == 3
    assert tasks.access_events_drain_task.run(world.org.pk) == 0  # a redelivered message
    assert _chained(world.org) == ids
    assert AccessChainHead.objects.get(organization=world.org).seq == 3
    with run_on_commit():
        later = _record(world.org, 1)  # after the drain started: a drain of its own
    assert sent == [world.org.pk, world.org.pk]
    assert tasks.access_events_drain_task.run(world.org.pk) == 1
    assert _chained(world.org) == ids + later


def test_a_drain_that_dies_mid_way_leaves_everything_for_the_next(
    world: World, sent: list[int], run_on_commit: Any, monkeypatch: Any
) -> None:
    with run_on_commit():
        ids = _record(world.org, 2)
    real_extend = access_outbox.chain_extend

    def extend_then_die(head: Any, payloads: Any) -> Any:
        real_extend(head, payloads)  # the events are written, the head moved…
        raise SystemExit("worker killed")  # …and the process dies before the commit

    monkeypatch.setattr(access_outbox, "chain_extend", extend_then_die)
    with pytest.raises(SystemExit):
        tasks.access_events_drain_task.run(world.org.pk)
    assert not AccessEvent.objects.filter(organization=world.org).exists()
    assert PendingAccessEvent.objects.count() == 2
    monkeypatch.setattr(access_outbox, "chain_extend", real_extend)
    assert tasks.access_events_drain_task.run(world.org.pk) == 2  # the redelivered message
    assert tasks.access_events_drain_task.run(world.org.pk) == 0
    assert _chained(world.org) == ids
    assert services.access_log_verify(world.org).ok


def test_a_drain_appends_in_pending_order_in_batches_of_one_transaction(
    world: World, sent: list[int], run_on_commit: Any, monkeypatch: Any
) -> None:
    with run_on_commit():
        ids = _record(world.org, 7)
    batches: list[int] = []
    real_batch = access_outbox._drain_batch

    def counted(organization_id: int) -> tuple[int, int]:
        taken, appended = real_batch(organization_id)
        batches.append(appended)
        return taken, appended

    monkeypatch.setattr(access_outbox, "APPEND_BATCH", 3)
    monkeypatch.setattr(access_outbox, "_drain_batch", counted)
    assert tasks.access_events_drain_task.run(world.org.pk) == 7
    assert batches == [3, 3, 1]  # three commits for seven events; each batch in pending order
    assert _chained(world.org) == ids
    assert services.access_log_verify(world.org).ok


def test_a_drain_costs_the_same_queries_for_one_event_or_forty(
    world: World, sent: list[int], run_on_commit: Any, django_assert_num_queries: Any
) -> None:
    with run_on_commit():
        _record(world.org, 1)
    services.access_events_drain(world.org.pk)  # the organization's first: creates its head
    # delete request, exists; savepoint, lock head, read pending, savepoint, insert events,
    # release, move head, delete pending, release — one transaction whatever the number of
    # events (up to 40 here: SQLite's 999 bind parameters split larger inserts)
    for n in (1, 40):
        with run_on_commit():
            _record(world.org, n)
        with django_assert_num_queries(11):
            assert services.access_events_drain(world.org.pk) == n
    with django_assert_num_queries(2):  # nothing pending: two queries, then return
        assert services.access_events_drain(world.org.pk) == 0
    assert services.access_log_verify(world.org).events == 42


def test_lost_drain_messages_are_appended_by_the_every_minute_drain(
    world: World, sent: list[int], run_on_commit: Any
) -> None:
    with run_on_commit():
        ours = _record(world.org, 2)
        theirs = _record(world.other_org, 1)
    assert sent == [world.org.pk, world.other_org.pk]
    sent.clear()  # the broker lost both messages
    with run_on_commit():
        ours += _record(world.org, 1)
    assert sent == []  # the lost drain still counts as queued: no message
    assert not AccessEvent.objects.exists()

    assert tasks.access_events_drain_all_task.run() == 4
    assert tasks.access_events_drain_all_task.run() == 0
    assert (_chained(world.org), _chained(world.other_org)) == (ours, theirs)
    assert not PendingAccessEvent.objects.exists()
    with run_on_commit():
        ours += _record(world.org, 1)
    assert sent == [world.org.pk]  # the lost request is cleared: drains are asked for again
    entry = next(
        e
        for e in app.conf.beat_schedule.values()
        if e["task"] == "lifecycle.tasks.access_events_drain_all_task"
    )
    assert entry["schedule"] <= 60.0  # within a minute


def test_an_event_whose_drain_the_broker_refuses_is_appended_at_once(
    world: World, settings: Any, monkeypatch: Any, run_on_commit: Any
) -> None:
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False

    def broker_down(organization_id: int) -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.access_events_drain_task, "delay", broker_down)
    with run_on_commit():
        event_id = services.access_event_record(organization=world.org, action="restore")
    assert _chained(world.org) == [event_id]
    assert not PendingAccessEvent.objects.exists()


def test_when_broker_and_drain_both_fail_the_event_waits_for_the_beat(
    world: World, settings: Any, monkeypatch: Any, run_on_commit: Any
) -> None:
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False

    def broker_down(organization_id: int) -> None:
        raise OperationalError("connection refused")

    def database_busy(organization_id: int) -> tuple[int, int]:
        raise RuntimeError("database is locked")

    real_batch = access_outbox._drain_batch
    monkeypatch.setattr(tasks.access_events_drain_task, "delay", broker_down)
    monkeypatch.setattr(access_outbox, "_drain_batch", database_busy)
    with run_on_commit():
        event_id = services.access_event_record(organization=world.org, action="restore")
    # the recorded action committed; its event is pending, not lost
    assert PendingAccessEvent.objects.filter(public_id=event_id).exists()
    monkeypatch.setattr(access_outbox, "_drain_batch", real_batch)
    assert tasks.access_events_drain_all_task.run() == 1
    assert _chained(world.org) == [event_id]


def test_inline_setting_appends_after_commit_in_the_recording_process(
    world: World, run_on_commit: Any
) -> None:
    with run_on_commit():
        event_id = services.access_event_record(organization=world.org, action="restore")
        assert not AccessEvent.objects.filter(public_id=event_id).exists()
    assert _chained(world.org) == [event_id]
    assert not PendingAccessEvent.objects.exists()
