"""An evidence read is exactly one access event, written by a real Celery worker: once read by
a lead through the API, once by a procurement token (whose other uses are `token_used`).

Follows tests/lifecycle/integration/test_worker.py: a `celery worker` subprocess on the test's
database and broker drains the pending events this process records as requests do.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from clients import services as clients_services
from kernel.tenancy import Actor
from lifecycle import services, tasks
from lifecycle.models import AccessEvent, PendingAccessEvent
from tests.backups.integration.conftest import cluster  # noqa: F401  # the fixture
from tests.backups.integration.support import Cluster
from tests.factories import (
    ClientFactory,
    DatasetFactory,
    LocationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_an_evidence_read_is_one_event_written_by_the_worker(
    cluster: Cluster,  # noqa: F811  # the imported fixture
    settings: Any,
    monkeypatch: Any,
) -> None:
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False  # the worker path, for real
    task = tasks.access_events_drain_task
    monkeypatch.setattr(
        task, "delay", lambda organization_id: cluster.publish(task, organization_id)
    )
    worker = cluster.start_worker("worker")

    org = OrganizationFactory(slug="evidence-live")
    lead = UserFactory(username="evidence-lead")
    MembershipFactory(organization=org, user=lead, role="lead")
    client = ClientFactory(organization=org)
    DatasetFactory(client=client, location=LocationFactory(organization=org))
    clients_services.grant_create(
        actor=Actor.system(org), grantee=lead, client=client, permission="view", reason="review"
    )
    token, raw = services.evidence_token_issue(
        actor=Actor.system(org),
        client=client,
        name="buyer",
        expires_at=timezone.now() + timedelta(days=7),
    )
    chained = cluster.wait_for(
        lambda: AccessEvent.objects.filter(organization=org).count() == 2 or None,
        60,
        "the worker to append the grant and token events",
    )
    assert chained, cluster.logs()

    api = APIClient()
    api.force_authenticate(lead)
    url = f"/api/v1/clients/{client.public_id}/evidence/"
    assert api.get(url, HTTP_USER_AGENT="auditor-laptop").status_code == 200
    procurement = APIClient()
    procurement.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert procurement.get(url).status_code == 200

    events = cluster.wait_for(
        lambda: (
            list(AccessEvent.objects.filter(organization=org, seq__gt=2).order_by("seq"))
            if AccessEvent.objects.filter(organization=org).count() >= 4
            else None
        ),
        60,
        "the worker to append both evidence reads",
    )
    logs = cluster.logs()
    assert [e.action for e in events] == ["evidence_read", "evidence_read"], logs
    by_lead, by_token = events
    assert (by_lead.actor_kind, by_lead.actor_label, by_lead.actor_user_id) == (
        "user",
        "evidence-lead",
        lead.pk,
    )
    assert by_lead.user_agent == "auditor-laptop"
    assert (by_token.actor_kind, by_token.actor_label) == (
        "procurement_token",
        f"procurement-token:{token.public_id}",
    )
    assert by_token.details["procurement_token"] == str(token.public_id)
    for event in events:
        assert (event.client_id, event.client_ref) == (client.pk, client.public_id)
        assert event.details["via"] == "api"
    assert "lifecycle.tasks.access_events_drain_task" in worker.output(), logs
    # nothing more arrives, nothing is left pending, the chain verifies
    assert AccessEvent.objects.filter(organization=org).count() == 4
    assert not PendingAccessEvent.objects.filter(organization=org).exists()
    assert services.access_log_verify(org).ok
