"""Git hosts, database servers and SaaS tools as locations: what a tenant may register, and the
hostile names refused before any program sees them (400 with a field message, never a 500)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from clients.models import StorageLocation
from tests.conftest import World

TOKEN = "ghp_live_token_never_shown_0123456789"
PASSWORD = "db-password-never-shown-42"


def _post(api: Any, body: dict[str, Any]) -> Any:
    return api.post("/api/v1/locations/", body, format="json")


def _field(response: Any, name: str) -> str:
    """A field's message(s) in a 400 answer, as one text."""
    value = response.json()["fields"][name]
    return " ".join(value) if isinstance(value, list) else str(value)


def _git(api: Any, url: str, **extra: Any) -> Any:
    return _post(
        api,
        {
            "name": f"Git {url[:40]}",
            "kind": "git",
            "provider": "git_server",
            "endpoint_url": url,
            **extra,
        },
    )


def _database(api: Any, world: World, url: str, kind: str = "postgres", **extra: Any) -> Any:
    return _post(
        api,
        {
            "name": f"DB {url}",
            "kind": kind,
            "provider": "database_server",
            "endpoint_url": url,
            "client": str(world.client.public_id),
            "credentials": {"username": "agency", "password": PASSWORD},
            **extra,
        },
    )


def test_a_git_host_with_a_token_is_registered_and_the_token_never_returned(
    world: World, as_user: Any
) -> None:
    api = as_user(world.admin)
    response = _git(
        api,
        "https://127.0.0.1:8443/agency/",
        credentials={"username": "bot", "token": TOKEN},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["has_credentials"] is True
    assert body["credentials_source"] == "stored"
    listing = api.get("/api/v1/locations/").content.decode()
    assert TOKEN not in response.content.decode()
    assert TOKEN not in listing
    location = StorageLocation.objects.get(public_id=body["id"])
    assert TOKEN.encode() not in bytes(location.credentials_sealed or b"")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ext::sh -c touch% /tmp/pwned", "spaces"),
        ("ext::ssh", "Remote helpers"),
        ("http://127.0.0.1/agency/", "must start with"),
        ("https://user:secret@127.0.0.1/agency/", "password"),
        ("https://127.0.0.1/agency/?upload-pack=x", "query"),
        ("ssh://-oProxyCommand=touch/x/", "start with '-'"),
        ("https://127.0.0.1/../etc/", ".."),
        ("fd::17", "Remote helpers"),
    ],
)
def test_hostile_git_bases_are_refused(world: World, as_user: Any, url: str, message: str) -> None:
    response = _git(as_user(world.admin), url)
    assert response.status_code == 400, response.content
    assert message in response.content.decode()
    assert "endpoint_url" in response.json()["fields"]


def test_a_file_git_base_must_lie_in_the_organizations_folder_of_a_local_root(
    world: World, as_user: Any, org_root: Path, tmp_path: Path
) -> None:
    api = as_user(world.admin)
    outside = _git(api, f"file://{tmp_path}/")
    assert outside.status_code == 400
    assert "endpoint_url" in outside.json()["fields"]
    (org_root / "repos").mkdir()
    inside = _git(api, f"file://{org_root}/repos/")
    assert inside.status_code == 201, inside.content
    assert inside.json()["endpoint_url"] == f"file://{org_root.resolve()}/repos/"


def test_a_git_host_on_an_internal_address_follows_the_egress_policy(
    world: World, as_user: Any, settings: Any
) -> None:
    settings.AGENCYOPS_EGRESS_ALLOW = []
    for url in (
        "git://127.0.0.1:9418/",
        "https://10.1.2.3/agency/",
        "ssh://git@169.254.169.254/x/",
    ):
        response = _git(as_user(world.admin), url)
        assert response.status_code == 400, (url, response.content)
        assert "internal addresses" in _field(response, "endpoint_url")


@pytest.mark.parametrize(
    "credentials",
    [
        {"access_key_id": "AKIA", "secret_access_key": "x"},  # an S3 shape
        {"username": "bot"},  # a token is missing
        {"ssh_private_key": "not a key"},
    ],
)
def test_git_credentials_have_one_of_two_shapes(
    world: World, as_user: Any, credentials: dict[str, str]
) -> None:
    response = _git(as_user(world.admin), "git://127.0.0.1:9418/", credentials=credentials)
    assert response.status_code == 400, response.content
    assert "credentials" in response.json()["fields"]


def test_a_database_server_location_is_dedicated_to_one_client(world: World, as_user: Any) -> None:
    api = as_user(world.admin)
    shared = _post(
        api,
        {
            "name": "Shared server",
            "kind": "postgres",
            "provider": "database_server",
            "endpoint_url": "postgresql://127.0.0.1:5432",
            "credentials": {"username": "agency", "password": PASSWORD},
        },
    )
    assert shared.status_code == 400
    assert "client" in shared.json()["fields"]
    dedicated = _database(api, world, "postgresql://127.0.0.1:5432")
    assert dedicated.status_code == 201, dedicated.content
    assert PASSWORD not in dedicated.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://agency:pw@127.0.0.1:5432",
        "postgresql://127.0.0.1:5432/postgres",
        "postgresql://127.0.0.1:5432?sslmode=disable",
        "mysql://127.0.0.1:3306",  # the wrong engine's scheme for a postgres location
        "https://127.0.0.1:5432",
    ],
)
def test_a_database_server_url_names_only_the_server(world: World, as_user: Any, url: str) -> None:
    response = _database(as_user(world.admin), world, url)
    assert response.status_code == 400, (url, response.content)
    assert "endpoint_url" in response.json()["fields"]


def _database_location(world: World, as_user: Any) -> dict[str, Any]:
    response = _database(as_user(world.admin), world, "postgresql://127.0.0.1:5432")
    assert response.status_code == 201, response.content
    return dict(response.json())


def _register(api: Any, world: World, location_id: str, path: str, name: str = "Data") -> Any:
    return api.post(
        "/api/v1/datasets/",
        {
            "client": str(world.client.public_id),
            "name": name,
            "kind": "business_records",
            "location": location_id,
            "path": path,
        },
        format="json",
    )


@pytest.mark.parametrize(
    "name",
    [
        "-x",
        "--help",
        "a;drop",
        "a b",
        "a/../b",
        "a`b",
        "a'b",
        "a\x00b",
        "postgres://x",
        "x" * 64,
        "$(id)",
        "a.b",
    ],
)
def test_hostile_database_names_are_refused_at_registration(
    world: World, as_user: Any, name: str
) -> None:
    location = _database_location(world, as_user)
    response = _register(as_user(world.admin), world, location["id"], name)
    assert response.status_code == 400, (name, response.content)
    assert "path" in response.json()["fields"]


def test_one_database_belongs_to_one_dataset_on_a_server(world: World, as_user: Any) -> None:
    location = _database_location(world, as_user)
    api = as_user(world.admin)
    assert _register(api, world, location["id"], "sales").status_code == 201
    again = _register(api, world, location["id"], "sales", name="Sales again")
    assert again.status_code == 400
    assert "another dataset" in _field(again, "path")


@pytest.mark.parametrize(
    "path",
    [
        "-oProxyCommand=x",
        "../x",
        "a;rm -rf",
        "a\x00b",
        "ext::sh -c x",
        "a/../../b",
        "https://evil/x",
        "$(id)",
        "a b",
        ".hidden",
        "a//b",
        "x@y",
    ],
)
def test_hostile_repository_paths_are_refused_at_registration(
    world: World, as_user: Any, path: str
) -> None:
    api = as_user(world.admin)
    location = _git(api, "git://127.0.0.1:9418/", client=str(world.client.public_id))
    assert location.status_code == 201, location.content
    response = _register(api, world, location.json()["id"], path)
    assert response.status_code == 400, (path, response.content)
    assert "path" in response.json()["fields"]


def test_a_source_location_is_never_a_backup_target(world: World, as_user: Any) -> None:
    api = as_user(world.admin)
    location = _git(api, "git://127.0.0.1:9418/")
    assert location.status_code == 201
    response = api.post(
        "/api/v1/policies/",
        {"name": "To git", "frequency": "daily", "targets": [location.json()["id"]]},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert "cannot hold backups" in response.content.decode()


def test_a_saas_tool_is_recorded_without_credentials(world: World, as_user: Any) -> None:
    api = as_user(world.admin)
    response = _post(
        api,
        {
            "name": "Client Slack",
            "kind": "saas",
            "provider": "slack",
            "endpoint_url": "https://client.slack.com",
        },
    )
    assert response.status_code == 201, response.content
    assert response.json()["credentials_source"] == "none"
    wrong = _post(api, {"name": "Slack on S3", "kind": "saas", "provider": "aws"})
    assert wrong.status_code == 400
    assert "provider" in wrong.json()["fields"]
