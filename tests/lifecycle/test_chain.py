"""The access log's hash chain: appended by the worker path, verified, tampering found."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lifecycle import services, tasks
from lifecycle.models import AccessChainHead, AccessEvent, AppendOnly
from lifecycle.services.access import log as access_log
from tests.conftest import World
from tests.lifecycle.conftest import append_events, raw_sql


def test_appended_events_form_one_verifiable_chain(world: World) -> None:
    events = append_events(world.org, 5, dataset=world.dataset)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == services.GENESIS
    for before, after in itertools.pairwise(events):
        assert after.prev_hash == before.hash
    report = services.access_log_verify(world.org)
    assert report.ok, report
    assert (report.events, report.head_seq) == (5, 5)
    # another organization's chain is separate and starts at 1
    (other,) = append_events(world.other_org, 1)
    assert other.seq == 1
    assert services.access_log_verify(world.other_org).ok


def test_altered_details_are_named_as_the_first_broken_link(world: World) -> None:
    events = append_events(world.org, 6)
    raw_sql("UPDATE {table} SET details = %s WHERE id = %s", [json.dumps({"n": 99}), events[3].pk])
    report = services.access_log_verify(world.org)
    assert not report.ok
    assert report.broken_at == 4
    assert report.event == str(events[3].public_id)
    assert "altered" in report.reason


def test_a_deleted_event_is_found(world: World) -> None:
    events = append_events(world.org, 6)
    raw_sql("DELETE FROM {table} WHERE id = %s", [events[2].pk])
    report = services.access_log_verify(world.org)
    assert (report.ok, report.broken_at) == (False, 3)
    assert "missing" in report.reason


def test_deleting_the_newest_event_is_found_through_the_head(world: World) -> None:
    events = append_events(world.org, 4)
    raw_sql("DELETE FROM {table} WHERE id = %s", [events[-1].pk])
    report = services.access_log_verify(world.org)
    assert (report.ok, report.broken_at) == (False, 4)


def test_two_reordered_events_are_found(world: World) -> None:
    events = append_events(world.org, 6)
    second, third = events[1], events[2]
    # swap their places in the sequence (through a free number: seq is unique per organization)
    raw_sql("UPDATE {table} SET seq = %s WHERE id = %s", [1000, second.pk])
    raw_sql("UPDATE {table} SET seq = %s WHERE id = %s", [2, third.pk])
    raw_sql("UPDATE {table} SET seq = %s WHERE id = %s", [3, second.pk])
    report = services.access_log_verify(world.org)
    assert (report.ok, report.broken_at) == (False, 2)
    assert report.event == str(third.public_id)


def test_rewriting_an_event_and_its_hash_breaks_the_next_link(world: World) -> None:
    events = append_events(world.org, 3)
    forged = events[1]
    canonical = services.canonical_event(
        organization_ref=str(world.org.public_id),
        public_id=forged.public_id,
        seq=forged.seq,
        occurred_at=forged.occurred_at,
        action=forged.action,
        actor_kind=forged.actor_kind,
        actor_label="somebody else",
        actor_token_ref=None,
        client_ref=None,
        dataset_ref=None,
        snapshot_ref=None,
        source_ip="",
        user_agent="",
        details={"n": 1},
        source_object="",
        source_line=None,
        prev_hash=forged.prev_hash,
    )
    new_hash = services.event_hash(forged.prev_hash, canonical)
    raw_sql(
        "UPDATE {table} SET actor_label = %s, hash = %s WHERE id = %s",
        ["somebody else", new_hash, forged.pk],
    )
    report = services.access_log_verify(world.org)
    assert (report.ok, report.broken_at) == (False, 3)
    assert "link" in report.reason


def test_the_orm_refuses_to_change_or_delete_events(world: World) -> None:
    (event,) = append_events(world.org, 1)
    with pytest.raises(AppendOnly):
        AccessEvent.objects.filter(pk=event.pk).update(details={})
    with pytest.raises(AppendOnly):
        AccessEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnly):
        event.delete()


def test_a_redelivered_pre_outbox_append_task_appends_nothing(world: World) -> None:
    # Messages of the pre-outbox recorder, still queued at the upgrade, are appended once.
    payload = services.access_event_payload(organization=world.org, action="restore")
    assert tasks.access_event_append_task.run(payload) == 1
    assert tasks.access_event_append_task.run(payload) == 0
    assert AccessEvent.objects.filter(organization=world.org).count() == 1
    assert AccessChainHead.objects.get(organization=world.org).seq == 1


def test_verify_command_reports_and_fails_on_a_broken_chain(world: World, capsys: Any) -> None:
    events = append_events(world.org, 3)
    append_events(world.other_org, 2)
    call_command("verify_access_log")
    out = capsys.readouterr().out
    assert "org-a: OK, 3 events" in out
    assert "org-b: OK, 2 events" in out
    raw_sql("UPDATE {table} SET user_agent = %s WHERE id = %s", ["curl", events[1].pk])
    with pytest.raises(CommandError, match="1 chain"):
        call_command("verify_access_log", "--organization", "org-a")
    assert "BROKEN at #2" in capsys.readouterr().out
    call_command("verify_access_log", "--organization", "org-b")  # the other chain is intact


def test_verify_api_names_the_first_broken_link(world: World, as_user: Any) -> None:
    events = append_events(world.org, 3)
    ok = as_user(world.auditor).get("/api/v1/access-events/verify/")
    assert ok.status_code == 200
    assert ok.json() == {
        "organization": "org-a",
        "ok": True,
        "events": 3,
        "head_seq": 3,
        "broken_at": None,
        "event": None,
        "reason": "",
    }
    raw_sql("DELETE FROM {table} WHERE id = %s", [events[0].pk])
    broken = as_user(world.admin).get("/api/v1/access-events/verify/").json()
    assert (broken["ok"], broken["broken_at"]) == (False, 1)
    assert as_user(world.lead).get("/api/v1/access-events/verify/").status_code == 403
    assert as_user(world.member).get("/api/v1/access-events/verify/").status_code == 403


def test_hash_covers_a_round_trip_through_the_database(world: World) -> None:
    odd = {"ünï": "çødé", "nested": {"b": [1, 2.5, None, True], "a": "x"}, "big": 2**40}
    (event,) = append_events(world.org, 1, dataset=world.dataset)
    access_log.access_events_append(
        [services.access_event_payload(organization=world.org, action="grant", details=odd)]
    )
    assert event.seq == 1
    assert services.access_log_verify(world.org).ok
