"""A grant on one dataset shows that dataset and nothing of its siblings, nor the client's
client-wide rows, in the API and on the dashboard. Reproduced against the earlier code: a lead
granted `view` on one dataset read, through /api/v1/deletion-requests/, /legal-holds/ and
/obligations/, the request, the hold and the obligation of a sibling dataset (name and
reason), and the dashboard listed the sibling's failed-backup alert. The rule is decided in one
place (`kernel.tenancy.grant_filter`); each model's queryset only declares its paths.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client as PageClient
from django.utils import timezone

from backups.services.alerts import alert_raise
from clients import services as clients_services
from kernel.tenancy import Actor, actor_for_user
from lifecycle import services as lifecycle_services
from lifecycle.models import DeletionCertificate, DeletionRequest
from tests.conftest import World
from tests.factories import DatasetFactory, UserFactory

SECRET = "sibling-secret"  # in every name and reason of the sibling's rows
OWN = "own-visible"  # in those of the granted dataset's rows


@pytest.fixture
def scoped(world: World) -> dict[str, Any]:
    system = Actor.system(world.org)
    sibling: Any = DatasetFactory(
        client=world.client, location=world.location, name=f"{SECRET} data"
    )
    lead = UserFactory(username="one-dataset-lead")
    clients_services.membership_add(actor=system, user=lead, role="lead")
    clients_services.grant_create(
        actor=system,
        grantee=lead,
        client=world.client,
        dataset=world.dataset,
        permission="view",
        reason="one dataset only",
    )
    rows: dict[str, Any] = {"lead": lead, "sibling": sibling}
    for dataset, label in ((sibling, SECRET), (world.dataset, OWN)):
        lifecycle_services.legal_hold_place(
            actor=system, client=world.client, dataset=dataset, reason=f"{label} hold"
        )
        lifecycle_services.obligation_create(
            actor=system,
            client=world.client,
            dataset=dataset,
            kind="retain_until",
            retain_until=timezone.now().date(),
            source="contract",
            source_reference=f"{label} obligation",
        )
        request = DeletionRequest.objects.create(
            organization=world.org,
            client=world.client,
            dataset=dataset,
            scope="dataset",
            reason=f"{label} deletion",
            plan={},
        )
        DeletionCertificate.objects.create(
            organization=world.org,
            client=world.client,
            request=request,
            document={"reason": f"{label} certificate"},
            sha256="0" * 64,
            signature="s",
            public_key="k",
            issued_at=timezone.now(),
        )
        alert_raise(
            organization=world.org,
            kind="backup_failed",
            incident_key=f"backup_failed:{dataset.public_id}",
            title=f"{label} backup failed",
            message=f"{label} backup failed",
            client=world.client,
            dataset=dataset,
        )
    # Client-wide rows: a grant on one dataset shows none of them.
    lifecycle_services.legal_hold_place(
        actor=system, client=world.client, reason=f"{SECRET} client-wide hold"
    )
    alert_raise(
        organization=world.org,
        kind="backup_failed",
        incident_key=f"backup_failed:client:{world.client.public_id}",
        title=f"{SECRET} client-wide alert",
        message=f"{SECRET} client-wide alert",
        client=world.client,
    )
    return rows


ROUTES = (
    "/api/v1/legal-holds/",
    "/api/v1/obligations/",
    "/api/v1/deletion-requests/",
    "/api/v1/alerts/",
    "/api/v1/datasets/",
    "/api/v1/snapshots/",
    "/api/v1/access-events/",
    "/api/v1/reviews/",
    "/api/v1/engagements/",
)


def test_a_dataset_grant_shows_no_sibling_row_in_the_api(
    world: World, scoped: dict[str, Any], as_user: Any
) -> None:
    client = as_user(scoped["lead"])
    seen_own = set()
    for route in ROUTES:
        response = client.get(route)
        assert response.status_code in (200, 403), (route, response.content)
        body = json.dumps(response.json())
        assert SECRET not in body, route
        if OWN in body:
            seen_own.add(route)
    # The granted dataset's own rows stay visible (the filter is not simply "nothing").
    assert seen_own >= {
        "/api/v1/legal-holds/",
        "/api/v1/obligations/",
        "/api/v1/deletion-requests/",
        "/api/v1/alerts/",
    }
    assert client.get(f"/api/v1/datasets/{scoped['sibling'].public_id}/").status_code == 404


def test_a_dataset_grant_shows_no_sibling_row_in_the_querysets(
    world: World, scoped: dict[str, Any]
) -> None:
    actor = actor_for_user(scoped["lead"])
    assert actor is not None
    sibling = scoped["sibling"]
    certificates = DeletionCertificate.objects.visible_to(actor)
    assert [c.document["reason"] for c in certificates] == [f"{OWN} certificate"]
    assert not DeletionRequest.objects.visible_to(actor).filter(dataset=sibling).exists()
    # The whole organization's roles still see everything.
    admin = actor_for_user(world.admin)
    assert admin is not None
    assert DeletionCertificate.objects.visible_to(admin).count() == 2


def test_a_dataset_grant_shows_no_sibling_alert_on_the_dashboard(
    world: World, scoped: dict[str, Any]
) -> None:
    page = PageClient()
    page.force_login(scoped["lead"])
    response = page.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert SECRET not in html
    assert f"{OWN} backup failed" in html
