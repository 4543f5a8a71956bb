"""Storage credentials: accepted once, sealed under the master key, never shown again."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.db import connection

from clients.models import StorageLocation
from clients.services import location_credentials
from tests.conftest import World

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
KEY_ID = "AKIAEXAMPLEKEYID0001"


@pytest.fixture
def created(world: World, as_user: Any, caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    caplog.set_level(logging.DEBUG)
    api = as_user(world.admin)
    response = api.post(
        "/api/v1/locations/",
        {
            "name": "Wasabi archive",
            "kind": "s3",
            "provider": "wasabi",
            "endpoint_url": "https://s3.eu-central-1.wasabisys.com",
            "region": "eu-central-1",
            "bucket": "agency-archive",
            "prefix": "backups",
            "credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET},
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    return {"response": response, "api": api}


def test_credentials_never_in_api_output(created: dict[str, Any]) -> None:
    body = created["response"].content.decode()
    assert SECRET not in body
    assert KEY_ID not in body
    assert created["response"].json()["has_credentials"] is True
    detail = created["api"].get(f"/api/v1/locations/{created['response'].json()['id']}/")
    listing = created["api"].get("/api/v1/locations/")
    for response in (detail, listing):
        assert SECRET not in response.content.decode()
        assert KEY_ID not in response.content.decode()


def test_credentials_stored_sealed_and_recoverable(created: dict[str, Any]) -> None:
    location = StorageLocation.objects.get(public_id=created["response"].json()["id"])
    raw = bytes(location.credentials_sealed or b"")
    assert SECRET.encode() not in raw
    assert KEY_ID.encode() not in raw
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM clients_storagelocation WHERE id = %s", [location.pk])
        row = cursor.fetchone()
    assert SECRET not in repr(row)
    assert location_credentials(location) == {
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
    }


def test_credentials_not_in_audit_log_or_logs(
    created: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    location_id = created["response"].json()["id"]
    created["api"].patch(
        f"/api/v1/locations/{location_id}/",
        {"credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET + "2"}},
        format="json",
    )
    entries = LogEntry.objects.all()
    assert entries.exists()
    for entry in entries:
        text = f"{entry.changes} {entry.changes_text} {entry.object_repr} {entry.additional_data}"
        assert SECRET not in text
        assert KEY_ID not in text
    assert SECRET not in caplog.text
    assert KEY_ID not in caplog.text


def test_credentials_not_on_admin_pages(world: World, created: dict[str, Any], client: Any) -> None:
    world.owner.is_staff = world.owner.is_superuser = True
    world.owner.save()
    client.force_login(world.owner)
    location = StorageLocation.objects.get(public_id=created["response"].json()["id"])
    pages = [
        "/admin/clients/storagelocation/",
        f"/admin/clients/storagelocation/{location.pk}/change/",
        "/admin/auditlog/logentry/",
    ]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET not in response.content.decode(), url
        assert KEY_ID not in response.content.decode(), url


def test_local_location_refuses_credentials(world: World, as_user: Any) -> None:
    response = as_user(world.admin).post(
        "/api/v1/locations/",
        {
            "name": "Disk",
            "kind": "local",
            "provider": "filesystem",
            "prefix": "/srv/backups",
            "credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET},
        },
        format="json",
    )
    assert response.status_code == 400
    assert "credentials" in response.json()["fields"]
