"""Grants expire on time and leave no guardian row; every grant change, token, login and
restore becomes exactly one access event."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from guardian.models import UserObjectPermission
from guardian.shortcuts import assign_perm

from backups.models import BackupRun, Snapshot
from backups.services import restore_request
from clients import services
from clients.models import AccessGrant
from kernel.http import RequestOrigin
from kernel.tenancy import Actor, actor_for_user
from lifecycle.models import AccessEvent
from tests.conftest import World


def _rows(user: Any) -> int:
    return UserObjectPermission.objects.filter(user=user).count()


def _at(monkeypatch: Any, moment: Any) -> None:
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_an_expired_grant_stops_working_within_a_minute_and_leaves_no_row(
    world: World, as_user: Any, monkeypatch: Any
) -> None:
    start = timezone.now()
    expires = start + timedelta(minutes=5)
    grant = services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.ungranted_lead,
        client=world.client_b,
        permission="restore",
        reason="cover",
        expires_at=expires,
    )
    url = f"/api/v1/clients/{world.client_b.public_id}/"
    api = as_user(world.ungranted_lead)
    assert api.get(url).status_code == 200
    assert _rows(world.ungranted_lead) == 2  # view + restore

    _at(monkeypatch, expires - timedelta(seconds=1))
    assert services.grants_expire() == []  # a second early: nothing to do
    assert api.get(url).status_code == 200

    # One second past expiry, before beat's next tick: the actor ignores it already.
    _at(monkeypatch, expires + timedelta(seconds=1))
    assert api.get(url).status_code == 404
    actor = actor_for_user(world.ungranted_lead)
    assert actor is not None
    assert actor.visible_client_ids == frozenset()

    # Beat's tick within the minute removes the rows, records the expiry, and only once.
    _at(monkeypatch, expires + timedelta(seconds=59))
    assert [g.pk for g in services.grants_expire()] == [grant.pk]
    assert services.grants_expire() == []
    assert _rows(world.ungranted_lead) == 0
    grant.refresh_from_db()
    assert grant.expired_at == expires + timedelta(seconds=59)
    assert grant.revoked_at is None
    call_command("check_grant_permissions")  # no orphan anywhere


def test_expiry_keeps_rows_another_active_grant_needs(world: World, monkeypatch: Any) -> None:
    system = Actor.system(world.org)
    now = timezone.now()
    services.grant_create(
        actor=system,
        grantee=world.ungranted_lead,
        client=world.client_b,
        permission="manage",
        reason="short",
        expires_at=now + timedelta(minutes=1),
    )
    services.grant_create(
        actor=system,
        grantee=world.ungranted_lead,
        client=world.client_b,
        permission="view",
        reason="long",
        expires_at=now + timedelta(days=1),
    )
    _at(monkeypatch, now + timedelta(minutes=1, seconds=1))
    # between expiry and the sweep the stale rows exist, but the actor grants view only
    assert _rows(world.ungranted_lead) == 3
    actor = actor_for_user(world.ungranted_lead)
    assert actor is not None
    assert actor.client_levels == {world.client_b.pk: 1}
    services.grants_expire()
    codenames = set(
        UserObjectPermission.objects.filter(user=world.ungranted_lead).values_list(
            "permission__codename", flat=True
        )
    )
    assert codenames == {"view_client"}


def test_check_grant_permissions_lists_orphans_and_fails(world: World, capsys: Any) -> None:
    call_command("check_grant_permissions")
    assign_perm("restore_client", world.ungranted_lead, world.client_b)  # behind the services
    with pytest.raises(CommandError, match="1 guardian row"):
        call_command("check_grant_permissions")
    assert "ungranted: restore_client on client" in capsys.readouterr().out
    call_command("check_grant_permissions", "--fix")
    call_command("check_grant_permissions")


def test_grant_request_is_approved_by_an_admin(world: World, as_user: Any) -> None:
    lead = as_user(world.ungranted_lead)
    created = lead.post(
        "/api/v1/grant-requests/",
        {"client": str(world.client_b.public_id), "permission": "restore", "reason": "incident"},
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["status"], body["requested_by"], body["days"]) == ("pending", "ungranted", 7)
    approve = f"/api/v1/grant-requests/{body['id']}/approve/"
    assert lead.post(approve).status_code == 403  # leads do not approve, not even their own
    assert as_user(world.lead).get(f"/api/v1/grant-requests/{body['id']}/").status_code == 404
    approved = as_user(world.admin).post(approve, {"note": "ok for the incident"})
    assert approved.status_code == 200, approved.content
    assert approved.json()["status"] == "approved"
    grant = AccessGrant.objects.get(public_id=approved.json()["grant"])
    assert (grant.grantee, grant.permission, grant.granted_by) == (
        world.ungranted_lead,
        "restore",
        world.admin,
    )
    assert lead.get(f"/api/v1/clients/{world.client_b.public_id}/").status_code == 200
    assert as_user(world.admin).post(approve).status_code == 409  # decided once


def test_grant_request_rejected_and_other_orgs_clients_refused(world: World, as_user: Any) -> None:
    member = as_user(world.member)
    refused = member.post(
        "/api/v1/grant-requests/",
        {"client": str(world.other_client.public_id), "permission": "view", "reason": "x"},
    )
    assert refused.status_code == 400
    manage = member.post(
        "/api/v1/grant-requests/",
        {"client": str(world.client_b.public_id), "permission": "manage", "reason": "x"},
    )
    assert manage.status_code == 400
    asked = member.post(
        "/api/v1/grant-requests/",
        {"client": str(world.client_b.public_id), "permission": "view", "reason": "x"},
    )
    rejected = as_user(world.owner).post(f"/api/v1/grant-requests/{asked.json()['id']}/reject/")
    assert rejected.json()["status"] == "rejected"
    assert as_user(world.auditor).post("/api/v1/grant-requests/", {}).status_code == 403


# --- events ---


def _events(world: World, action: str) -> list[AccessEvent]:
    return list(AccessEvent.objects.filter(organization=world.org, action=action))


def test_grant_revoke_and_expire_each_record_one_event(
    world: World, run_on_commit: Any, monkeypatch: Any
) -> None:
    admin = world.actor(world.admin)
    with run_on_commit():
        grant = services.grant_create(
            actor=admin,
            grantee=world.ungranted_lead,
            client=world.client_b,
            dataset=world.dataset_b,
            permission="view",
            reason="audit",
            expires_at=timezone.now() + timedelta(hours=1),
        )
    (event,) = _events(world, "grant")
    assert (event.actor_kind, event.actor_label, event.actor_user_id) == (
        "user",
        "admin",
        world.admin.pk,
    )
    assert (event.client_id, event.dataset_id) == (world.client_b.pk, world.dataset_b.pk)
    assert event.details["grantee"] == "ungranted"
    with run_on_commit():
        services.grant_revoke(actor=admin, grant=grant)
    assert len(_events(world, "revoke")) == 1
    with run_on_commit():
        short = services.grant_create(
            actor=admin,
            grantee=world.ungranted_lead,
            client=world.client_b,
            permission="view",
            reason="short",
            expires_at=timezone.now() + timedelta(seconds=30),
        )
    _at(monkeypatch, short.expires_at + timedelta(seconds=1))
    with run_on_commit():
        services.grants_expire()
    (expired,) = _events(world, "expire")
    assert (expired.actor_kind, expired.actor_label) == ("system", "system")
    assert expired.details["grant"] == str(short.public_id)


def test_token_creation_records_one_event(world: World, run_on_commit: Any, as_user: Any) -> None:
    with run_on_commit():
        created = as_user(world.lead).post("/api/v1/tokens/", {"name": "ci"})
    assert created.status_code == 201
    (event,) = _events(world, "token_created")
    assert (event.actor_label, event.details["token"]) == ("lead", created.json()["id"])


def test_login_and_failed_login_are_recorded(world: World, run_on_commit: Any, client: Any) -> None:
    with run_on_commit():
        assert not client.login(username="lead", password="wrong password")
        assert client.login(username="lead", password="correct horse battery staple")
        assert not client.login(username="nobody-at-all", password="x")
    (failed,) = _events(world, "login_failed")
    (login,) = _events(world, "login")
    assert failed.actor_label == login.actor_label == "lead"
    assert failed.details == {"username": "lead"}


def test_a_restore_records_one_event_with_actor_origin_and_target(
    world: World, run_on_commit: Any
) -> None:
    run = BackupRun.objects.create(
        organization=world.org, dataset=world.dataset, trigger="manual", status="succeeded"
    )
    snapshot = Snapshot.objects.create(
        organization=world.org,
        dataset=world.dataset,
        location=world.location,
        run=run,
        manifest_id="20260101T000000Z-a",
        taken_at=timezone.now(),
    )
    token, _ = services.api_token_issue(user=world.member)
    actor = actor_for_user(world.member, token_id=token.pk)
    with run_on_commit():
        restore = restore_request(
            actor=actor,
            snapshot=snapshot,
            destination_location=world.location,
            destination_path="datasets/restores/x",
            enqueue=False,
            origin=RequestOrigin("203.0.113.9", "curl/8"),
        )
    (event,) = _events(world, "restore")
    assert (event.actor_kind, event.actor_label) == ("api_token", "member")
    assert event.actor_token_ref == token.public_id
    assert (event.client_ref, event.dataset_ref, event.snapshot_ref) == (
        world.client.public_id,
        world.dataset.public_id,
        snapshot.public_id,
    )
    assert (event.source_ip, event.user_agent) == ("203.0.113.9", "curl/8")
    assert event.details["restore"] == str(restore.public_id)
