"""Access events written by a real Celery worker: a grant, a restore and a download, each
exactly once.

Follows tests/backups/integration: a `celery worker` subprocess on the test's database and
broker. This process records the events as requests do (pending rows, a drain request per
commit); the worker drains them into the chain.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backups.models import BackupRun, Snapshot
from backups.services import backup_run_create, backup_run_execute, restore_request
from clients import services
from kernel.http import RequestOrigin
from kernel.tenancy import actor_for_user
from lifecycle import tasks
from lifecycle.models import AccessEvent, PendingAccessEvent
from lifecycle.services import access_log_verify
from tests.backups.conftest import make_agency, sample_files
from tests.backups.integration.conftest import cluster  # noqa: F401  # the fixture
from tests.backups.integration.support import Cluster, Process
from tests.factories import (
    ClientFactory,
    DatasetFactory,
    LocationFactory,
    MembershipFactory,
    OrganizationFactory,
    UserFactory,
)
from tests.s3server import s3_endpoint

__all__ = ["s3_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

DRAIN_TASK = "lifecycle.tasks.access_events_drain_task"


def _drains_that_appended(worker: Process) -> list[int]:
    """What each drain the worker finished returned (the events it appended), in order."""
    pattern = re.compile(rf"Task {re.escape(DRAIN_TASK)}\[[0-9a-f-]+\] succeeded in [^:]+: (\d+)")
    return [int(n) for n in pattern.findall(worker.output())]


def _worker_path(started: Cluster, settings: Any, monkeypatch: Any) -> None:
    """From here on, events recorded in this process are appended by the cluster's worker."""
    settings.AGENCYOPS_ACCESS_LOG_INLINE = False  # the worker path, for real
    task = tasks.access_events_drain_task
    # `.delay()` from this process, to the broker the started worker consumes.
    monkeypatch.setattr(
        task, "delay", lambda organization_id: started.publish(task, organization_id)
    )


def test_a_grant_and_a_restore_each_become_one_event_written_by_the_worker(
    cluster: Cluster,  # noqa: F811  # the imported fixture
    settings: Any,
    monkeypatch: Any,
) -> None:
    _worker_path(cluster, settings, monkeypatch)
    worker = cluster.start_worker("worker")

    org = OrganizationFactory(slug="live")
    admin, lead = UserFactory(username="live-admin"), UserFactory(username="live-lead")
    MembershipFactory(organization=org, user=admin, role="admin")
    MembershipFactory(organization=org, user=lead, role="lead")
    client = ClientFactory(organization=org)
    # Dedicated to the client: the restore may go anywhere on it but its root.
    location = LocationFactory(organization=org, client=client)
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
    assert worker.output().count(DRAIN_TASK) >= 2, logs
    assert "succeeded" in worker.output(), logs
    assert AccessEvent.objects.filter(organization=org).count() == 2
    assert not PendingAccessEvent.objects.filter(organization=org).exists()
    assert access_log_verify(org).ok


def test_a_download_becomes_one_event_written_by_the_worker(
    cluster: Cluster,  # noqa: F811  # the imported fixture
    s3_endpoint: str,  # the imported fixture
    tmp_path: Path,
    settings: Any,
    monkeypatch: Any,
) -> None:
    agency = make_agency(s3_endpoint, slug="live")
    # Set-up in this process, its events (membership, grant) appended inline as before.
    files = sample_files()
    dataset = agency.dataset("Downloadable", files=files)
    target = agency.local_location("Download target")
    pending = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    run = backup_run_execute(str(pending.public_id))
    assert run is not None
    assert run.status == "succeeded", run.error
    snapshot = Snapshot.objects.get(run=run)
    reader = UserFactory(username="live-reader")
    services.membership_add(actor=agency.actor, user=reader, role="member")
    services.grant_create(
        actor=agency.actor, grantee=reader, client=agency.client, permission="restore", reason="r"
    )
    before = AccessEvent.objects.filter(organization=agency.org).count()
    assert before > 0  # the grant at least: the download must land after it
    assert not PendingAccessEvent.objects.exists()

    _worker_path(cluster, settings, monkeypatch)
    worker = cluster.start_worker("worker")
    api = APIClient()
    api.force_authenticate(reader)
    path = "data/train.csv"
    response = api.get(
        f"/api/v1/snapshots/{snapshot.public_id}/download/",
        {"path": path},
        HTTP_USER_AGENT="live-download",
    )
    assert response.status_code == 200, response.content
    body = b"".join(response.streaming_content)
    assert body == files[path]
    # The request has returned; the event is pending until the worker drains it.
    assert not AccessEvent.objects.filter(action="download").exists()

    event = cluster.wait_for(
        lambda: AccessEvent.objects.filter(organization=agency.org, action="download").first(),
        60,
        "the worker to append the download event",
    )
    logs = cluster.logs()
    # written by the worker: one drain, and it appended this one event
    assert _drains_that_appended(worker) == [1], logs
    assert AccessEvent.objects.filter(action="download").count() == 1
    assert AccessEvent.objects.filter(organization=agency.org).count() == before + 1
    assert event.seq == before + 1
    assert not PendingAccessEvent.objects.exists()
    # the right actor ...
    assert (event.actor_kind, event.actor_label, event.actor_user_id) == (
        "user",
        "live-reader",
        reader.pk,
    )
    assert (event.source_ip, event.user_agent) == ("127.0.0.1", "live-download")
    # ... and the right target: the dataset, its client, the snapshot, the file
    assert (event.organization_id, event.client_id, event.dataset_id) == (
        agency.org.pk,
        agency.client.pk,
        dataset.pk,
    )
    assert event.dataset_ref == dataset.public_id
    assert event.snapshot_ref == snapshot.public_id
    assert event.details == {
        "path": path,
        "size": len(files[path]),
        "sha256": hashlib.sha256(files[path]).hexdigest(),
    }
    report = access_log_verify(agency.org)
    assert report.ok, report
    assert report.events == before + 1
