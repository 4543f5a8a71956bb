"""Access events written by a real Celery worker: a grant and a restore, each exactly once.

Follows tests/backups/integration: a `celery worker` subprocess on the test's database and
broker. This process records the events as requests do (pending rows, a drain request per
commit); the worker drains them into the chain.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from agencyops.http import RequestOrigin
from agencyops.tenancy import actor_for_user
from backups.models import BackupRun, Snapshot
from backups.services import restore_request
from clients import services
from lifecycle import tasks
from lifecycle.models import AccessEvent, PendingAccessEvent
from lifecycle.services import access_log_verify
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


def test_a_grant_and_a_restore_each_become_one_event_written_by_the_worker(
    cluster: Cluster,  # noqa: F811  # the imported fixture
    settings: Any,
    monkeypatch: Any,
) -> None:
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False  # the worker path, for real
    task = tasks.access_events_drain_task
    # `.delay()` from this process, to the broker the started worker consumes.
    monkeypatch.setattr(
        task, "delay", lambda organization_id: cluster.publish(task, organization_id)
    )
    worker = cluster.start_worker("worker")

    org = OrganizationFactory(slug="live")
    admin, lead = UserFactory(username="live-admin"), UserFactory(username="live-lead")
    MembershipFactory(organization=org, user=admin, role="admin")
    MembershipFactory(organization=org, user=lead, role="lead")
    client = ClientFactory(organization=org)
    location = LocationFactory(organization=org)
    dataset = DatasetFactory(client=client, location=location)
    run = BackupRun.objects.create(
        organization=org, dataset=dataset, trigger="manual", status="succeeded"
    )
    snapshot = Snapshot.objects.create(
        organization=org,
        dataset=dataset,
        location=location,
        run=run,
        manifest_id="20260101T000000Z-live",
        taken_at=timezone.now(),
    )

    admin_actor = actor_for_user(admin)
    assert admin_actor is not None
    services.grant_create(
        actor=admin_actor, grantee=lead, client=client, permission="restore", reason="on call"
    )
    lead_actor = actor_for_user(lead)
    assert lead_actor is not None
    restore = restore_request(
        actor=lead_actor,
        snapshot=snapshot,
        destination_location=location,
        destination_path="restores/live",
        enqueue=False,
        origin=RequestOrigin("192.0.2.10", "pytest"),
    )

    events = cluster.wait_for(
        lambda: (
            list(AccessEvent.objects.filter(organization=org).order_by("seq"))
            if AccessEvent.objects.filter(organization=org).count() >= 2
            else None
        ),
        60,
        "the worker to append the grant and restore events",
    )
    logs = cluster.logs()
    assert sorted(e.action for e in events) == ["grant", "restore"], logs
    grant_event = next(e for e in events if e.action == "grant")
    restore_event = next(e for e in events if e.action == "restore")
    assert (grant_event.actor_label, grant_event.client_id) == ("live-admin", client.pk)
    assert grant_event.details["grantee"] == "live-lead"
    assert (restore_event.actor_label, restore_event.dataset_id) == ("live-lead", dataset.pk)
    assert restore_event.snapshot_ref == snapshot.public_id
    assert restore_event.details["restore"] == str(restore.public_id)
    assert restore_event.source_ip == "192.0.2.10"
    # written by the worker: it drained once per commit, and nothing more arrives
    assert worker.output().count("lifecycle.tasks.access_events_drain_task") >= 2, logs
    assert "succeeded" in worker.output(), logs
    assert AccessEvent.objects.filter(organization=org).count() == 2
    assert not PendingAccessEvent.objects.filter(organization=org).exists()
    assert access_log_verify(org).ok
