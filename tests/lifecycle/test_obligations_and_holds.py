"""Retention obligations (due dates, CRUD), engagement end, legal holds and pruning."""

from __future__ import annotations

import datetime as dt
from typing import Any

from backups.models import DatasetProtection
from backups.services import protection_create
from clients import services as clients_services
from clients.models import Engagement
from lifecycle import services
from lifecycle.models import DeletionRequest, LegalHold, RetentionObligation
from tests.conftest import World
from tests.factories import DatasetFactory


def test_engagement_end_computes_due_dates(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    engagement = world.engagement
    response = admin.post(
        "/api/v1/obligations/",
        {
            "client": str(world.client.public_id),
            "engagement": str(engagement.public_id),
            "kind": "delete_after_engagement",
            "days_after_end": 45,
            "source": "dpa",
            "source_reference": "DPA §9",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["due_on"] is None  # the engagement still runs
    retain = admin.post(
        "/api/v1/obligations/",
        {
            "client": str(world.client.public_id),
            "engagement": str(engagement.public_id),
            "kind": "retain_for",
            "retain_years": 7,
            "source": "regulation",
        },
        format="json",
    )
    assert retain.status_code == 201, retain.content
    # An end in the future, or before the start, is refused; a past leap day is fine.
    future = admin.post(
        f"/api/v1/engagements/{engagement.public_id}/end/", {"ends_on": "2999-01-01"}, format="json"
    )
    assert future.status_code == 400
    assert "not in the future" in future.content.decode()
    Engagement.objects.filter(pk=engagement.pk).update(starts_on=dt.date(2024, 1, 1))
    response = admin.post(
        f"/api/v1/engagements/{engagement.public_id}/end/", {"ends_on": "2024-02-29"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ended"
    dues = dict(
        RetentionObligation.objects.filter(engagement=engagement).values_list("kind", "due_on")
    )
    assert dues == {
        "delete_after_engagement": dt.date(2024, 4, 14),
        "retain_for": dt.date(2031, 2, 28),
    }
    # ending twice is a conflict; a lead may not end one
    again = admin.post(f"/api/v1/engagements/{engagement.public_id}/end/", {}, format="json")
    assert again.status_code == 409
    lead = as_user(world.lead).post(f"/api/v1/engagements/{engagement.public_id}/end/")
    assert lead.status_code == 403


def test_engagement_without_obligation_gets_one_from_its_terms(world: World) -> None:
    services.engagement_end(
        actor=world.actor(world.admin), engagement=world.engagement, ends_on=dt.date(2026, 3, 1)
    )
    (obligation,) = RetentionObligation.objects.filter(engagement=world.engagement)
    assert obligation.kind == "delete_after_engagement"
    assert obligation.due_on == dt.date(2026, 3, 1) + dt.timedelta(
        days=world.engagement.deletion_due_days
    )


def test_obligation_crud_and_validation(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    body = {
        "client": str(world.client.public_id),
        "kind": "retain_until",
        "retain_until": "2030-01-31",
        "source": "contract",
    }
    created = admin.post("/api/v1/obligations/", body, format="json")
    assert created.status_code == 201, created.content
    assert created.json()["due_on"] == "2030-01-31"
    url = f"/api/v1/obligations/{created.json()['id']}/"
    patched = admin.patch(url, {"retain_until": "2031-06-30"}, format="json")
    assert patched.json()["due_on"] == "2031-06-30"
    missing = admin.post("/api/v1/obligations/", {**body, "retain_until": None}, format="json")
    assert missing.status_code == 400
    assert "retain_until" in missing.json()["fields"]
    assert as_user(world.lead).post("/api/v1/obligations/", body, format="json").status_code == 403
    assert as_user(world.lead).get(url).status_code == 200  # granted client: readable
    assert as_user(world.ungranted_lead).get(url).status_code == 404
    assert admin.delete(url).status_code == 204
    assert not RetentionObligation.objects.exists()


def test_legal_hold_suspends_pruning_in_scope_until_released(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    for dataset in (world.dataset, world.dataset_b):
        protection_create(dataset)
    client_hold = admin.post(
        "/api/v1/legal-holds/",
        {"client": str(world.client.public_id), "reason": "subpoena"},
        format="json",
    )
    assert client_hold.status_code == 201, client_hold.content
    dataset_hold = services.legal_hold_place(
        actor=world.actor(world.owner), client=world.client, dataset=world.dataset, reason="audit"
    )
    assert DatasetProtection.objects.get(dataset=world.dataset).pruning_suspended
    assert not DatasetProtection.objects.get(dataset=world.dataset_b).pruning_suspended
    # a dataset registered while the client hold is active is held too
    late = clients_services.dataset_register(
        actor=world.actor(world.admin),
        client=world.client,
        name="Late dataset",
        kind="raw_client_data",
        location=world.location,
        path="datasets/late",
    )
    assert DatasetProtection.objects.get(dataset=late).pruning_suspended
    # releasing the client hold frees `late`, not the dataset under its own hold
    url = f"/api/v1/legal-holds/{client_hold.json()['id']}/release/"
    released = admin.post(url)
    assert released.status_code == 200
    assert released.json()["active"] is False
    assert not DatasetProtection.objects.get(dataset=late).pruning_suspended
    assert DatasetProtection.objects.get(dataset=world.dataset).pruning_suspended
    assert admin.post(url).status_code == 409
    services.legal_hold_release(actor=world.actor(world.admin), hold=dataset_hold)
    assert not DatasetProtection.objects.get(dataset=world.dataset).pruning_suspended
    assert (
        as_user(world.lead)
        .post(
            "/api/v1/legal-holds/",
            {"client": str(world.client.public_id), "reason": "x"},
            format="json",
        )
        .status_code
        == 403
    )


def test_due_obligation_under_legal_hold_is_not_drafted(world: World) -> None:
    services.engagement_end(
        actor=world.actor(world.admin),
        engagement=world.engagement,
        ends_on=world.engagement.starts_on,
    )
    LegalHold.objects.create(organization=world.org, client=world.client, reason="litigation")
    assert services.deletion_requests_draft_due(dt.date(2100, 1, 1)) == []
    assert not DeletionRequest.objects.exists()
    obligation = RetentionObligation.objects.get(engagement=world.engagement)
    assert obligation.drafted_request is None  # tried again tomorrow


def test_dataset_scope_must_belong_to_client(world: World) -> None:
    other = DatasetFactory(client=world.client_b)
    import pytest

    from kernel.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed):
        services.legal_hold_place(
            actor=world.actor(world.admin), client=world.client, dataset=other, reason="x"
        )
