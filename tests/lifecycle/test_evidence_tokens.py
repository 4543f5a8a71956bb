"""Procurement tokens: issued by admins (shown once, stored hashed, expiry required), they read
their client's evidence and deletion certificates, and their organization's signing key to pin,
and nothing else — every API route is tried with every method — and every use is an access
event. Expired or revoked: 401."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clients import services as clients_services
from kernel.tenancy import Actor
from lifecycle import services
from lifecycle.models import PendingAccessEvent, ProcurementToken
from tests.agencyops.conftest import w
from tests.agencyops.test_api_access import ROUTES, _api_route_names
from tests.conftest import World

__all__ = ["w"]  # the fixture

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")
# What a token of client B may read; everything else of the API answers 404.
READABLE = {
    "client-evidence-list",
    "deletion-request-certificate",
    "evidence-schema-list",
    "signing-key-list",
}
# What any token of the organization reads, whichever client it is of: the evidence schema,
# and the signing key (published: the reviewer pins it to verify what the token fetched).
ORGANIZATION_READABLE = {"evidence-schema-list", "signing-key-list"}


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def api_as(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def issue(w: World, client: Any, **fields: Any) -> tuple[ProcurementToken, str]:
    fields.setdefault("expires_at", timezone.now() + timedelta(days=30))
    return services.evidence_token_issue(
        actor=Actor.system(w.org), client=client, name="procurement", **fields
    )


def call(client: APIClient, method: str, url: str) -> Any:
    return getattr(client, method.lower())(url, data={} if method != "HEAD" else None)


def _events(w: World) -> list[dict[str, Any]]:
    return [p.payload for p in PendingAccessEvent.objects.filter(organization=w.org).order_by("id")]


def test_every_api_route_is_enumerated_here() -> None:
    assert set(ROUTES) == _api_route_names()
    assert set(ROUTES) >= READABLE


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_token_of_client_a_gets_404_on_every_route_but_the_schema_and_key(
    w: World, name: str
) -> None:
    """Client B's objects (the routes' targets), client lists, writes: all 404 for A's token."""
    _, raw = issue(w, w.client)
    url = ROUTES[name].url(w)
    for method in METHODS:
        response = call(bearer(raw), method, url)
        if name in ORGANIZATION_READABLE and method in ("GET", "HEAD"):
            assert response.status_code == 200, (method, response.content)
        else:
            assert response.status_code == 404, (method, response.status_code, response.content)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_token_of_client_b_reads_its_evidence_and_certificates_only(w: World, name: str) -> None:
    _, raw = issue(w, w.client_b)
    url = ROUTES[name].url(w)
    for method in METHODS:
        response = call(bearer(raw), method, url)
        if name in READABLE and method in ("GET", "HEAD"):
            assert response.status_code == 200, (method, response.content)
        else:
            assert response.status_code == 404, (method, response.status_code, response.content)


def test_what_the_token_reads(w: World) -> None:
    token, raw = issue(w, w.client_b)
    client = bearer(raw)
    evidence = client.get(f"/api/v1/clients/{w.client_b.public_id}/evidence/")
    assert evidence.status_code == 200
    key = services.signing_key_ensure(w.org).public_key
    assert services.evidence_verify(evidence.content, public_key=key)[0]
    document = json.loads(evidence.content)["document"]
    assert document["client"]["id"] == str(w.client_b.public_id)
    assert str(token.public_id) in [t["id"] for t in document["access"]["procurement_tokens"]]
    certificate = client.get(
        f"/api/v1/deletion-requests/{w.deletion_request_b.public_id}/certificate/"
    )
    assert certificate.status_code == 200
    assert certificate.json() == services.certificate_envelope(w.certificate_b)
    assert certificate.content == services.certificate_file_bytes(w.certificate_b)
    signing_key = client.get("/api/v1/signing-key/")
    assert signing_key.status_code == 200
    assert signing_key.json()["public_key"] == key
    assert services.certificate_verify(certificate.content, public_key=key)[0]
    assert client.get(f"/api/v1/clients/{w.client.public_id}/evidence/").status_code == 404
    assert client.get("/api/v1/clients/").status_code == 404
    token.refresh_from_db()
    assert token.last_used_at is not None


def test_every_use_is_one_access_event(w: World) -> None:
    token, raw = issue(w, w.client_b)
    PendingAccessEvent.objects.all().delete()  # the issue's own event is tested below
    client = bearer(raw)
    client.get(f"/api/v1/clients/{w.client_b.public_id}/evidence/", HTTP_USER_AGENT="buyer")
    client.get(f"/api/v1/deletion-requests/{w.deletion_request_b.public_id}/certificate/")
    client.get("/api/v1/clients/")
    client.post(f"/api/v1/clients/{w.client_b.public_id}/evidence/", {})
    events = _events(w)
    assert [e["action"] for e in events] == [
        "evidence_read",
        "token_used",
        "token_used",
        "token_used",
    ]
    label = f"procurement-token:{token.public_id}"
    for event in events:
        assert (event["actor_kind"], event["actor_label"]) == ("procurement_token", label)
        assert event["actor_user_id"] is None
        assert event["client_ref"] == str(w.client_b.public_id)
        assert event["details"]["procurement_token"] == str(token.public_id)
    assert events[0]["user_agent"] == "buyer"
    assert [(e["details"]["method"], e["details"]["status"]) for e in events[1:]] == [
        ("GET", 200),
        ("GET", 404),
        ("POST", 404),
    ]
    assert events[2]["details"]["path"] == "/api/v1/clients/"


def test_a_token_reads_its_own_organizations_signing_key_as_an_access_event(w: World) -> None:
    """The key endpoint answers the caller's organization's key: a token of organization B
    gets B's key, never A's, and each read is one `token_used` event in B's log alone."""
    key_a = services.signing_key_ensure(w.org).public_key
    key_b = services.signing_key_ensure(w.other_org).public_key
    token_b, raw_b = services.evidence_token_issue(
        actor=Actor.system(w.other_org),
        client=w.other_client,
        name="their procurement",
        expires_at=timezone.now() + timedelta(days=30),
    )
    PendingAccessEvent.objects.all().delete()
    response = bearer(raw_b).get("/api/v1/signing-key/")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "organization": str(w.other_org.public_id),
        "algorithm": "Ed25519",
        "public_key": key_b,
    }
    assert key_b != key_a
    # A's key is nowhere to be reached with B's token: the route names no organization, and
    # A's certificate is not found.
    assert key_a not in response.content.decode()
    certificate = f"/api/v1/deletion-requests/{w.deletion_request_b.public_id}/certificate/"
    assert bearer(raw_b).get(certificate).status_code == 404
    assert _events(w) == []  # nothing lands in organization A's log
    events = [
        p.payload
        for p in PendingAccessEvent.objects.filter(organization=w.other_org).order_by("id")
    ]
    assert [(e["action"], e["details"]["path"], e["details"]["status"]) for e in events] == [
        ("token_used", "/api/v1/signing-key/", 200),
        ("token_used", certificate, 404),
    ]
    assert events[0]["actor_label"] == f"procurement-token:{token_b.public_id}"
    assert events[0]["client_ref"] == str(w.other_client.public_id)


def test_admins_issue_tokens_shown_once_and_stored_hashed(w: World) -> None:
    url = f"/api/v1/clients/{w.client_b.public_id}/evidence-tokens/"
    expires = timezone.now() + timedelta(days=90)
    response = api_as(w.admin).post(
        url, {"name": "ACME procurement", "expires_at": expires.isoformat()}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    raw = body["token"]
    assert raw.startswith("aop_")
    assert body["client"] == str(w.client_b.public_id)
    assert body["created_by"] == "admin"
    token = ProcurementToken.objects.get(public_id=body["id"])
    assert token.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in json.dumps(
        list(ProcurementToken.objects.values()), default=str
    )  # only its hash is kept
    # never shown again
    listed = api_as(w.auditor).get(url)
    assert listed.status_code == 200
    assert raw not in listed.content.decode()
    assert body["id"] in listed.content.decode()
    detail = api_as(w.admin).get(f"{url}{body['id']}/").json()
    assert "token" not in detail
    # the issue is an access event of the admin, about the client
    (event,) = [e for e in _events(w) if e["details"].get("procurement_token") == body["id"]]
    assert event["action"] == "token_created"
    assert (event["actor_label"], event["client_ref"]) == ("admin", str(w.client_b.public_id))
    assert bearer(raw).get(f"/api/v1/clients/{w.client_b.public_id}/evidence/").status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x"}, "expires_at"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "expires_at": "in a while"}, "expires_at"),
        ({"name": "", "expires_at": "2099-01-01T00:00:00Z"}, "name"),
    ],
)
def test_expiry_is_required_and_bounded(w: World, body: dict[str, Any], field: str) -> None:
    url = f"/api/v1/clients/{w.client_b.public_id}/evidence-tokens/"
    response = api_as(w.admin).post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["fields"]


def test_at_most_366_days(w: World) -> None:
    url = f"/api/v1/clients/{w.client_b.public_id}/evidence-tokens/"
    too_far = timezone.now() + timedelta(days=367)
    response = api_as(w.admin).post(
        url, {"name": "x", "expires_at": too_far.isoformat()}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["fields"]["expires_at"] == ["At most 366 days from now."]


def test_only_admins_issue_and_revoke(w: World) -> None:
    token, _ = issue(w, w.client)
    url = f"/api/v1/clients/{w.client.public_id}/evidence-tokens/"
    body = {"name": "x", "expires_at": (timezone.now() + timedelta(days=1)).isoformat()}
    # the lead holds manage on client A, still no procurement tokens
    assert api_as(w.lead).post(url, body, format="json").status_code == 403
    assert api_as(w.lead).get(url).status_code == 403
    assert api_as(w.auditor).post(url, body, format="json").status_code == 403
    assert api_as(w.auditor).post(f"{url}{token.public_id}/revoke/").status_code == 403
    # a token id under another client's URL is not found
    other = f"/api/v1/clients/{w.client_b.public_id}/evidence-tokens/{token.public_id}/"
    assert api_as(w.admin).get(other).status_code == 404


def test_expired_revoked_and_unknown_tokens_get_401(w: World) -> None:
    url = f"/api/v1/clients/{w.client_b.public_id}/evidence/"
    past = timezone.now() - timedelta(days=40)
    old, expired = issue(w, w.client_b)
    ProcurementToken.objects.filter(pk=old.pk).update(
        created_at=past, expires_at=past + timedelta(days=30)
    )
    response = bearer(expired).get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"

    token, raw = issue(w, w.client_b)
    assert bearer(raw).get(url).status_code == 200
    revoke = api_as(w.admin).post(
        f"/api/v1/clients/{w.client_b.public_id}/evidence-tokens/{token.public_id}/revoke/"
    )
    assert revoke.status_code == 200, revoke.content
    assert revoke.json()["revoked_by"] == "admin"
    assert bearer(raw).get(url).status_code == 401
    again = api_as(w.admin).post(
        f"/api/v1/clients/{w.client_b.public_id}/evidence-tokens/{token.public_id}/revoke/"
    )
    assert again.status_code == 409
    (event,) = [e for e in _events(w) if e["action"] == "revoke"]
    assert event["details"]["procurement_token"] == str(token.public_id)

    assert bearer("aop_" + "x" * 43).get(url).status_code == 401
    assert bearer("aop_").get(url).status_code == 401
    # the revoked token no longer appears in the evidence
    document = json.loads(api_as(w.owner).get(url).content)["document"]
    assert str(token.public_id) not in json.dumps(document["access"])


def test_personal_tokens_still_work(w: World) -> None:
    _, raw = clients_services.api_token_issue(user=w.owner)
    response = bearer(raw).get("/api/v1/clients/")
    assert response.status_code == 200
    assert str(w.client_b.public_id) in response.content.decode()
