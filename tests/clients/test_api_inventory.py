"""Inventory API behaviour: success bodies, validation messages, grants deciding writes."""

from __future__ import annotations

from typing import Any

import pytest

from clients.models import Dataset
from tests.conftest import World
from tests.factories import EngagementFactory, LocationFactory


def _payload(w: World, **overrides: Any) -> dict[str, Any]:
    body = {
        "client": str(w.client.public_id),
        "name": "Claims export",
        "kind": "raw_client_data",
        "classification": "restricted",
        "contains_personal_data": True,
        "source": "SFTP drop from the client",
        "location": str(w.location.public_id),
        "path": "datasets/claims/2026",  # in client A's folder on the shared bucket
        "rpo": "04:00:00",
        "rto": "PT2H",
    }
    body.update(overrides)
    return body


def test_lead_registers_dataset(world: World, as_user: Any) -> None:
    response = as_user(world.lead).post("/api/v1/datasets/", _payload(world), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "Claims export"
    assert body["client"] == str(world.client.public_id)
    assert body["location"] == str(world.location.public_id)
    assert body["rpo"] == "P0DT04H00M00S"
    assert body["rto"] == "P0DT02H00M00S"
    assert body["registered_by"] == "lead"
    assert body["owner"] == "lead"  # defaults to the registering lead
    assert body["lifecycle_state"] == "active"
    dataset = Dataset.objects.get(public_id=body["id"])
    assert dataset.organization_id == world.org.pk
    assert "pk" not in body
    assert str(dataset.pk) != body["id"]


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"kind": "spreadsheet"}, "kind", "not a valid choice"),
        ({"rpo": "tomorrow"}, "rpo", "HH:MM:SS or ISO 8601"),
        ({"rpo": "00:00:00"}, "rpo", "at least"),
        ({"rto": "P400D"}, "rto", "at most"),
        ({"rpo": 12}, "rpo", "HH:MM:SS or ISO 8601"),
        ({"classification": "secret"}, "classification", "not a valid choice"),
        ({"location": "not-a-uuid"}, "location", "Expected a UUID"),
        ({"client": ["a"]}, "client", "Expected a UUID"),
        ({"path": "../escape"}, "path", "may not contain '..'"),
        ({"path": "/absolute"}, "path", "may not contain '..'"),
        ({"name": ""}, "name", "may not be blank"),
        ({"contains_personal_data": "perhaps"}, "contains_personal_data", "valid boolean"),
        ({"owner": "nobody-here"}, "owner", "does not exist"),
    ],
)
def test_invalid_dataset_fields_get_field_messages(
    world: World, as_user: Any, overrides: dict[str, Any], field: str, fragment: str
) -> None:
    response = as_user(world.lead).post(
        "/api/v1/datasets/", _payload(world, **overrides), format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid"
    messages = " ".join(body["fields"][field]).lower()
    assert fragment.lower() in messages
    assert not Dataset.objects.filter(name="Claims export").exists()


def test_missing_fields_are_each_named(world: World, as_user: Any) -> None:
    response = as_user(world.lead).post("/api/v1/datasets/", {}, format="json")
    assert response.status_code == 400
    assert set(response.json()["fields"]) >= {"client", "name", "kind", "location"}


def test_foreign_location_is_not_visible(world: World, as_user: Any) -> None:
    foreign = LocationFactory(organization=world.other_org)
    response = as_user(world.lead).post(
        "/api/v1/datasets/", _payload(world, location=str(foreign.public_id)), format="json"
    )
    assert response.status_code == 400
    assert "is visible to you" in response.json()["fields"]["location"][0]


def test_location_dedicated_to_another_client_is_refused(world: World, as_user: Any) -> None:
    # the admin sees client B's bucket, but it cannot hold client A's data
    response = as_user(world.admin).post(
        "/api/v1/datasets/",
        _payload(world, location=str(world.dedicated_location.public_id)),
        format="json",
    )
    assert response.status_code == 400
    assert "dedicated to another client" in response.json()["fields"]["location"][0]


def test_engagement_of_another_client_is_refused(world: World, as_user: Any) -> None:
    engagement_b = EngagementFactory(client=world.client_b)
    response = as_user(world.admin).post(
        "/api/v1/datasets/",
        _payload(world, engagement=str(engagement_b.public_id)),
        format="json",
    )
    assert response.status_code == 400
    assert "another client" in response.json()["fields"]["engagement"][0]


def test_ten_megabyte_body_is_refused(world: World, as_user: Any) -> None:
    huge = _payload(world, source="x" * (10 * 1024 * 1024))
    response = as_user(world.lead).post("/api/v1/datasets/", huge, format="json")
    assert response.status_code == 400
    assert "limit" in response.json()["detail"]
    assert not Dataset.objects.filter(name="Claims export").exists()


def test_malformed_json_is_a_400(world: World, as_user: Any) -> None:
    response = as_user(world.lead).post(
        "/api/v1/datasets/", data=b'{"name": ', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_view_grant_cannot_register(world: World, as_user: Any) -> None:
    from clients import services
    from kernel.tenancy import Actor

    services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.ungranted_lead,
        client=world.client,
        permission="view",
        reason="read only",
    )
    response = as_user(world.ungranted_lead).post(
        "/api/v1/datasets/", _payload(world), format="json"
    )
    assert response.status_code == 403
    assert "'manage' grant" in response.json()["detail"]


def test_member_with_restore_grant_cannot_register(world: World, as_user: Any) -> None:
    response = as_user(world.member).post("/api/v1/datasets/", _payload(world), format="json")
    assert response.status_code == 403


def test_lead_edits_dataset_but_not_its_client(world: World, as_user: Any) -> None:
    url = f"/api/v1/datasets/{world.dataset.public_id}/"
    ok = as_user(world.lead).patch(url, {"rpo": "P2D", "source": "re-export"}, format="json")
    assert ok.status_code == 200, ok.content
    assert ok.json()["rpo"] == "P2DT00H00M00S"
    moved = as_user(world.lead).patch(url, {"client": str(world.client_b.public_id)}, format="json")
    assert moved.status_code == 400
    deleted = as_user(world.lead).patch(url, {"lifecycle_state": "deleted"}, format="json")
    assert deleted.status_code == 400
    world.dataset.refresh_from_db()
    assert world.dataset.client_id == world.client.pk
    assert world.dataset.lifecycle_state == "active"


def test_duplicate_dataset_name_is_a_field_error(world: World, as_user: Any) -> None:
    response = as_user(world.lead).post(
        "/api/v1/datasets/", _payload(world, name=world.dataset.name), format="json"
    )
    assert response.status_code == 400
    assert "already exists" in str(response.json()["fields"])


def test_dataset_filters(world: World, as_user: Any) -> None:
    response = as_user(world.admin).get(
        "/api/v1/datasets/", {"client": str(world.client_b.public_id)}
    )
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert ids == [str(world.dataset_b.public_id)]
    bad = as_user(world.admin).get("/api/v1/datasets/", {"client": "nope"})
    assert bad.status_code == 400


def test_admin_creates_client_engagement_and_location(world: World, as_user: Any) -> None:
    api = as_user(world.admin)
    client = api.post("/api/v1/clients/", {"name": "Globex", "contact_email": "a@globex.test"})
    assert client.status_code == 201, client.content
    assert client.json()["slug"] == "globex"
    assert client.json()["dataset_count"] == 0
    engagement = api.post(
        "/api/v1/engagements/",
        {
            "client": client.json()["id"],
            "name": "Pilot",
            "starts_on": "2026-03-01",
            "ends_on": "2026-02-01",
        },
        format="json",
    )
    assert engagement.status_code == 400
    assert "end before it starts" in engagement.json()["fields"]["ends_on"][0]
    location = api.post(
        "/api/v1/locations/",
        {"name": "Cold", "kind": "local", "provider": "filesystem", "prefix": "relative/path"},
        format="json",
    )
    assert location.status_code == 400
    assert "absolute path" in location.json()["fields"]["prefix"][0]


def test_lead_cannot_create_clients(world: World, as_user: Any) -> None:
    response = as_user(world.lead).post("/api/v1/clients/", {"name": "Sneaky"})
    assert response.status_code == 403


def test_member_management_rules(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    created = admin.post("/api/v1/members/", {"username": "newbie", "role": "lead"}, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["role"] == "lead"
    owner_attempt = admin.post(
        "/api/v1/members/", {"username": "boss", "role": "owner"}, format="json"
    )
    assert owner_attempt.status_code == 403
    demote_owner = admin.patch(
        f"/api/v1/members/{world.owner.membership.public_id}/", {"role": "lead"}, format="json"
    )
    assert demote_owner.status_code == 403
    last_owner = as_user(world.owner).patch(
        f"/api/v1/members/{world.owner.membership.public_id}/", {"role": "admin"}, format="json"
    )
    assert last_owner.status_code == 409
    assert "at least one owner" in last_owner.json()["detail"]
