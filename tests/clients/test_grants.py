"""Grants are realized as django-guardian object permissions, by services only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from guardian.models import UserObjectPermission

from clients import services
from clients.models import Client
from kernel.tenancy import Actor, actor_for_user
from tests.conftest import World


def _codenames(user: Any, obj: Any) -> set[str]:
    rows = UserObjectPermission.objects.filter(user=user, object_pk=str(obj.pk))
    return {
        codename
        for codename in rows.values_list("permission__codename", flat=True)
        if codename.endswith(obj._meta.model_name)
    }


def test_grant_levels_become_guardian_permissions(world: World) -> None:
    assert _codenames(world.lead, world.client) == {
        "view_client",
        "restore_client",
        "manage_client",
    }
    assert _codenames(world.member, world.client) == {"view_client", "restore_client"}
    assert _codenames(world.ungranted_lead, world.client) == set()


def test_revoke_removes_rows_but_keeps_overlapping_grants(world: World, as_user: Any) -> None:
    system = Actor.system(world.org)
    view = services.grant_create(
        actor=system,
        grantee=world.ungranted_lead,
        client=world.client,
        permission="view",
        reason="a",
    )
    manage = services.grant_create(
        actor=system,
        grantee=world.ungranted_lead,
        client=world.client,
        permission="manage",
        reason="b",
    )
    services.grant_revoke(actor=system, grant=manage)
    assert _codenames(world.ungranted_lead, world.client) == {"view_client"}
    services.grant_revoke(actor=system, grant=view)
    assert _codenames(world.ungranted_lead, world.client) == set()
    response = as_user(world.ungranted_lead).get(f"/api/v1/clients/{world.client.public_id}/")
    assert response.status_code == 404


def test_api_grant_then_revoke(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    lead = as_user(world.ungranted_lead)
    url = f"/api/v1/clients/{world.client_b.public_id}/"
    assert lead.get(url).status_code == 404
    created = admin.post(
        "/api/v1/grants/",
        {
            "grantee": "ungranted",
            "client": str(world.client_b.public_id),
            "permission": "view",
            "reason": "covering for a colleague",
            "expires_at": (timezone.now() + timedelta(days=7)).isoformat(),
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["granted_by"] == "admin"
    assert lead.get(url).status_code == 200
    revoked = admin.post(f"/api/v1/grants/{created.json()['id']}/revoke/")
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == "admin"
    assert lead.get(url).status_code == 404
    again = admin.post(f"/api/v1/grants/{created.json()['id']}/revoke/")
    assert again.status_code == 409


def test_dataset_grant_shows_only_that_dataset(world: World, as_user: Any) -> None:
    from tests.factories import DatasetFactory

    sibling = DatasetFactory(client=world.client_b, location=world.dedicated_location)
    services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.ungranted_lead,
        client=world.client_b,
        dataset=world.dataset_b,
        permission="restore",
        reason="one dataset",
    )
    api = as_user(world.ungranted_lead)
    ids = {row["id"] for row in api.get("/api/v1/datasets/").json()["results"]}
    assert ids == {str(world.dataset_b.public_id)}
    assert api.get(f"/api/v1/datasets/{sibling.public_id}/").status_code == 404
    clients = api.get("/api/v1/clients/").json()["results"]
    assert [(c["id"], c["dataset_count"]) for c in clients] == [(str(world.client_b.public_id), 1)]
    actor = actor_for_user(world.ungranted_lead)
    assert actor is not None
    assert actor.level_on(client_id=world.client_b.pk, dataset_id=world.dataset_b.pk) == 2
    assert actor.level_on(client_id=world.client_b.pk, dataset_id=sibling.pk) == 0


def test_invalid_grants_are_refused(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    past = admin.post(
        "/api/v1/grants/",
        {
            "grantee": "ungranted",
            "client": str(world.client.public_id),
            "permission": "view",
            "reason": "x",
            "expires_at": "2020-01-01T00:00:00Z",
        },
        format="json",
    )
    assert past.status_code == 400
    assert "future" in past.json()["fields"]["expires_at"][0]
    to_admin = admin.post(
        "/api/v1/grants/",
        {
            "grantee": "admin2",
            "client": str(world.client.public_id),
            "permission": "view",
            "reason": "x",
        },
        format="json",
    )
    assert to_admin.status_code == 400
    assert "whole organization" in to_admin.json()["fields"]["grantee"][0]
    foreign = admin.post(
        "/api/v1/grants/",
        {
            "grantee": "other_admin",
            "client": str(world.client.public_id),
            "permission": "view",
            "reason": "x",
        },
        format="json",
    )
    assert foreign.status_code == 400
    member_manage = admin.post(
        "/api/v1/grants/",
        {
            "grantee": "member",
            "client": str(world.client.public_id),
            "permission": "manage",
            "reason": "x",
        },
        format="json",
    )
    assert member_manage.status_code == 400
    assert Client.objects.filter(pk=world.client.pk).exists()


def test_lead_sees_only_own_grants(world: World, as_user: Any) -> None:
    rows = as_user(world.lead).get("/api/v1/grants/").json()["results"]
    assert rows
    assert {row["grantee"] for row in rows} == {"lead"}
