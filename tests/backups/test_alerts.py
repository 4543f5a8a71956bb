"""Alerts: one notice per incident (e-mail + webhook) from the run that noticed it, nothing new
on a repeat, a "resolved" notice on recovery; delivery retries that never send twice; the
assurance sweep (missed RPOs, due reviews); reviews; acknowledgement rights; the API's tenancy
and the webhook URL kept secret.

Mail goes to Django's test outbox; the webhook is a real HTTP server on loopback (a thread of
this process) that records every POST.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import (
    Alert,
    AlertDelivery,
    AlertKind,
    AlertState,
    BackupRun,
    DeliveryChannel,
    NotificationSettings,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import alerts as alert_services
from backups.services import backup_run_create, backup_run_execute
from backups.services.alerts import alert_acknowledge, alert_clear, alert_raise
from backups.services.notifications import (
    MAX_DELIVERY_ATTEMPTS,
    alert_deliveries_retry,
    alert_deliveries_send,
    notification_settings_update,
)
from backups.services.sweep import assurance_sweep, review_record
from clients import services as clients_services
from clients.models import REVIEW_PERIOD, Client, Dataset, StorageLocation
from kernel.exceptions import Conflict, Forbidden
from kernel.tenancy import Actor
from tests.backups.conftest import Agency, sample_files
from tests.conftest import World
from tests.factories import DatasetFactory, UserFactory
from tests.s3server import free_port

SECRET_PATH = "/hooks/T0001/B0002/s3cr3t-t0ken"


class WebhookServer:
    """A chat tool's incoming webhook on loopback: records each POST (path and JSON body) and
    answers with the next queued status (200 when none is queued)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                status = server.statuses.pop(0) if server.statuses else 200
                if status == 200:
                    server.posts.append({"path": self.path, "body": body})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:  # stdlib name
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{SECRET_PATH}"

    def bodies(self) -> list[dict[str, Any]]:
        return [post["body"] for post in self.posts]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    server = WebhookServer()
    yield server
    server.close()


def _back_up(dataset: Dataset, targets: list[StorageLocation]) -> BackupRun:
    """A run carried out here, as the worker's task does on its final attempt."""
    run = backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    return done


# --- the acceptance: a failing backup, a repeat, a recovery ---


def test_a_backup_failing_against_a_stopped_endpoint_notifies_once_and_resolves(
    agency: Agency,
    webhook: WebhookServer,
    mailoutbox: list[Any],
    django_capture_on_commit_callbacks: Any,
) -> None:
    owner = UserFactory(username="dana")
    clients_services.membership_add(actor=agency.actor, user=owner, role="lead")
    notification_settings_update(actor=agency.actor, webhook_url=webhook.url)
    dataset = agency.dataset("Project files", files=sample_files(), owner=owner)
    stopped = agency.s3_location(
        "Offsite", endpoint=f"http://127.0.0.1:{free_port()}", create_bucket=False
    )

    with django_capture_on_commit_callbacks(execute=True):
        first = _back_up(dataset, [stopped])

    assert first.status == RunStatus.FAILED
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.subject == "[AgencyOps] Backup failed: Project files → Offsite"
    # the dataset owner, then the organization's owner and admin; nobody twice
    assert mail.to == [
        "dana@example.test",
        "agency-owner@example.test",
        "agency-admin@example.test",
    ]
    assert "endpoint unreachable" in mail.body
    assert "What to do:" in mail.body
    assert f"http://127.0.0.1:8000/datasets/{dataset.public_id}/" in mail.body
    assert len(webhook.posts) == 1
    assert webhook.posts[0]["path"] == SECRET_PATH
    body = webhook.bodies()[0]
    assert body["text"].startswith("[AgencyOps] HIGH: Backup failed: Project files → Offsite")
    alert = Alert.objects.get()
    assert body["alert"] == {
        "id": str(alert.public_id),
        "kind": "backup_failed",
        "state": "open",
        "severity": "high",
        "title": "Backup failed: Project files → Offsite",
        "message": alert.message,
        "client": {"id": str(agency.client.public_id), "name": agency.client.name},
        "dataset": {"id": str(dataset.public_id), "name": "Project files"},
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": None,
    }
    assert alert.incident_key == f"backup_failed:{dataset.public_id}:{stopped.public_id}"
    assert set(alert.deliveries.values_list("channel", "event", "attempts")) == {
        ("email", "opened", 1),
        ("webhook", "opened", 1),
    }
    assert not alert.deliveries.filter(sent_at__isnull=True).exists()

    # The same incident again: one more occurrence, nothing sent.
    with django_capture_on_commit_callbacks(execute=True):
        second = _back_up(dataset, [stopped])

    assert second.status == RunStatus.FAILED
    assert len(mailoutbox) == 1
    assert len(webhook.posts) == 1
    alert.refresh_from_db()
    assert (alert.state, alert.occurrences) == (AlertState.OPEN, 2)
    assert Alert.objects.count() == 1

    # The endpoint comes back (the location now points at the working S3 server).
    clients_services.location_update(
        actor=agency.actor, location=stopped, endpoint_url=agency.s3_endpoint
    )
    agency.raw_store(stopped.bucket).create_bucket()
    with django_capture_on_commit_callbacks(execute=True):
        third = _back_up(dataset, [stopped])

    assert third.status == RunStatus.SUCCEEDED, third.error
    assert len(mailoutbox) == 2
    assert mailoutbox[1].subject == "[AgencyOps] Resolved: Backup failed: Project files → Offsite"
    assert "A backup to Offsite succeeded" in mailoutbox[1].body
    assert len(webhook.posts) == 2
    resolved = webhook.bodies()[1]
    assert resolved["text"].startswith("[AgencyOps] RESOLVED: Backup failed")
    assert resolved["alert"]["state"] == "resolved"
    assert resolved["alert"]["resolved_at"] is not None
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    # A later failure is a new incident: a new alert and a new notice.
    clients_services.location_update(
        actor=agency.actor,
        location=stopped,
        endpoint_url=f"http://127.0.0.1:{free_port()}",
    )
    with django_capture_on_commit_callbacks(execute=True):
        _back_up(dataset, [stopped])
    assert Alert.objects.count() == 2
    assert len(mailoutbox) == 3
    assert len(webhook.posts) == 3


def test_a_transient_failure_before_the_final_attempt_alerts_nobody(
    agency: Agency, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    from backups.services import TransientFailure

    dataset = agency.dataset("Project files", files=sample_files())
    stopped = agency.s3_location(
        "Offsite", endpoint=f"http://127.0.0.1:{free_port()}", create_bucket=False
    )
    run = backup_run_create(
        dataset=dataset, trigger=Trigger.MANUAL, targets=[stopped], enqueue=False
    )
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(TransientFailure):
        backup_run_execute(str(run.public_id), final_attempt=False)

    assert not Alert.objects.exists()
    assert mailoutbox == []


# --- raising, clearing, races ---


def test_raise_counts_repeats_and_a_clear_resolves_once(
    world: World, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    key = f"drill_failed:{world.dataset.public_id}"
    t0 = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        opened = alert_raise(
            organization=world.org,
            kind=AlertKind.DRILL_FAILED,
            incident_key=key,
            title="Restore drill failed: A",
            message="checksum mismatch",
            dataset=world.dataset,
            now=t0,
        )
        again = alert_raise(
            organization=world.org,
            kind=AlertKind.DRILL_FAILED,
            incident_key=key,
            title="Restore drill failed: A",
            message="checksum mismatch again",
            dataset=world.dataset,
            now=t0 + timedelta(hours=1),
        )
    assert again.pk == opened.pk
    assert (again.occurrences, again.last_seen_at, again.message) == (
        2,
        t0 + timedelta(hours=1),
        "checksum mismatch again",
    )
    assert again.client_id == world.client.pk  # taken from the dataset
    assert len(mailoutbox) == 1

    with django_capture_on_commit_callbacks(execute=True):
        cleared = alert_clear(organization=world.org, incident_key=key, resolution="drill passed")
        twice = alert_clear(organization=world.org, incident_key=key, resolution="drill passed")
    assert cleared is not None
    assert cleared.state == AlertState.RESOLVED
    assert twice is None
    assert [m.subject for m in mailoutbox] == [
        "[AgencyOps] Restore drill failed: A",
        "[AgencyOps] Resolved: Restore drill failed: A",
    ]
    # Another organization's incident of the same key is its own.
    assert alert_clear(organization=world.other_org, incident_key=key, resolution="x") is None


def test_a_concurrent_insert_of_the_same_incident_becomes_an_occurrence(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"rpo_missed:{world.dataset.public_id}"
    existing = alert_raise(
        organization=world.org, kind="rpo_missed", incident_key=key, title="t", message="m"
    )
    real = alert_services._unresolved
    calls = {"n": 0}

    def racing(organization: Any, incident_key: str) -> Any:
        # The first read misses the row, as if another process inserted it just after.
        calls["n"] += 1
        return None if calls["n"] == 1 else real(organization, incident_key)

    monkeypatch.setattr(alert_services, "_unresolved", racing)
    bumped = alert_raise(
        organization=world.org, kind="rpo_missed", incident_key=key, title="t", message="m2"
    )

    assert calls["n"] == 2
    assert bumped.pk == existing.pk
    assert bumped.occurrences == 2
    assert Alert.objects.filter(incident_key=key).count() == 1
    assert AlertDelivery.objects.filter(alert=existing).count() == 1  # the first one's e-mail


# --- deliveries: retried with backoff, never sent twice ---


class FailingEmailBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages: Any) -> int:
        raise smtplib.SMTPServerDisconnected("connection unexpectedly closed")


def test_a_failed_delivery_is_retried_with_backoff_and_sent_once(
    world: World,
    webhook: WebhookServer,
    mailoutbox: list[Any],
    settings: Any,
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    notification_settings_update(actor=world.actor(world.admin), webhook_url=webhook.url)
    webhook.statuses = [500]
    settings.EMAIL_BACKEND = "tests.backups.test_alerts.FailingEmailBackend"
    caplog.set_level(logging.DEBUG)

    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(
            organization=world.org,
            kind=AlertKind.POSTURE_REGRESSION,
            incident_key=f"posture:{world.location.public_id}:versioning",
            title="Versioning suspended on Shared bucket",
            message="Versioning is Suspended.",
            location=world.location,
        )

    deliveries = {d.channel: d for d in alert.deliveries.all()}
    assert set(deliveries) == {"email", "webhook"}
    for delivery in deliveries.values():
        assert delivery.sent_at is None
        assert delivery.attempts == 1
    # The tenant sees one reason for every failure, never the remote's status; the log says.
    assert deliveries["webhook"].error == (
        "webhook at 127.0.0.1 not reachable: no success (2xx) answer came back."
    )
    assert "500" not in deliveries["webhook"].error
    assert "HTTP 500" in caplog.text
    assert "SMTPServerDisconnected" in deliveries["email"].error
    assert webhook.posts == []
    assert SECRET_PATH not in caplog.text
    assert all(SECRET_PATH not in d.error for d in deliveries.values())

    created = max(d.created_at for d in deliveries.values())
    # Too early for the backoff: nothing is tried.
    assert alert_deliveries_retry(now=created + timedelta(seconds=30)) == 0
    # The mail server and the webhook are back.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert alert_deliveries_retry(now=created + timedelta(minutes=3)) == 2
    assert len(mailoutbox) == 1
    assert len(webhook.posts) == 1
    assert not AlertDelivery.objects.filter(sent_at__isnull=True).exists()
    assert set(AlertDelivery.objects.values_list("attempts", "error")) == {(2, "")}
    # Running the retry, or the original send, again sends nothing more.
    assert alert_deliveries_retry(now=created + timedelta(hours=5)) == 0
    assert alert_deliveries_send([d.pk for d in deliveries.values()]) == 0
    assert len(mailoutbox) == 1
    assert len(webhook.posts) == 1


def test_a_delivery_that_keeps_failing_stops_after_the_last_attempt(
    world: World, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.EMAIL_BACKEND = "tests.backups.test_alerts.FailingEmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        alert = alert_raise(
            organization=world.org,
            kind=AlertKind.RPO_MISSED,
            incident_key=f"rpo_missed:{world.dataset.public_id}",
            title="RPO missed",
            message="old",
            dataset=world.dataset,
        )
    delivery = alert.deliveries.get()
    later = delivery.created_at + timedelta(days=1)
    for _ in range(10):
        alert_deliveries_retry(now=later)
    delivery.refresh_from_db()
    assert delivery.attempts == MAX_DELIVERY_ATTEMPTS
    assert delivery.sent_at is None


# --- the sweep: missed RPOs and due reviews ---


def test_the_sweep_raises_a_missed_rpo_once_and_clears_it_when_a_snapshot_is_fresh(
    agency: Agency, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    dataset = agency.dataset("Project files", files=sample_files())
    assert dataset.protection.policy is not None
    start = dataset.created_at

    with django_capture_on_commit_callbacks(execute=True):
        early = assurance_sweep(now=start + dataset.rpo - timedelta(minutes=1))
    assert (early.raised, Alert.objects.count()) == (0, 0)

    late = start + dataset.rpo + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        report = assurance_sweep(now=late)
        repeat = assurance_sweep(now=late + timedelta(minutes=15))
    assert (report.raised, repeat.raised, repeat.still_open) == (1, 0, 1)
    alert = Alert.objects.get(kind=AlertKind.RPO_MISSED)
    assert alert.incident_key == f"rpo_missed:{dataset.public_id}"
    assert alert.last_seen_at == late + timedelta(minutes=15)
    assert "has no good snapshot" in alert.message
    assert [m.subject for m in mailoutbox] == [
        f"[AgencyOps] RPO missed: Project files ({agency.client.name})"
    ]

    # A good snapshot taken an hour before the next sweep: the incident is over.
    target = agency.local_location("Target")
    Snapshot.objects.create(
        organization=agency.org,
        dataset=dataset,
        location=target,
        manifest_id="m-1",
        taken_at=late + timedelta(hours=1),
    )
    with django_capture_on_commit_callbacks(execute=True):
        after = assurance_sweep(now=late + timedelta(hours=2))
    assert after.cleared == 1
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert mailoutbox[-1].subject.startswith("[AgencyOps] Resolved: RPO missed")

    # Forgotten snapshots do not count: the newest good one ages past the RPO again.
    Snapshot.objects.update(forgotten_at=late)
    with django_capture_on_commit_callbacks(execute=True):
        again = assurance_sweep(now=late + timedelta(hours=3))
    assert again.raised == 1


def test_a_successful_backup_clears_a_missed_rpo(
    agency: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    dataset = agency.dataset("Project files", files=sample_files())
    assurance_sweep(now=dataset.created_at + dataset.rpo + timedelta(hours=1))
    assert Alert.objects.unresolved().filter(kind=AlertKind.RPO_MISSED).count() == 1

    done = _back_up(dataset, [agency.local_location("Target")])

    assert done.status == RunStatus.SUCCEEDED
    assert not Alert.objects.unresolved().exists()


def test_the_sweep_reads_a_fixed_number_of_queries_per_organization(
    agency: Agency, django_capture_on_commit_callbacks: Any
) -> None:
    first = agency.dataset("First", files=sample_files())
    late = first.created_at + timedelta(days=400)
    assurance_sweep(now=late)  # opens every incident there is

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            report = assurance_sweep(now=late)
        assert report.raised == report.cleared == 0
        return len(queries)

    before = count()
    for index in range(4):
        agency.dataset(f"More {index}", files={"a.txt": b"a"})
        Client.objects.create(organization=agency.org, name=f"C{index}", slug=f"c{index}")
    assurance_sweep(now=late)  # their incidents open
    assert count() == before


def test_a_due_review_alerts_the_owners_until_a_review_is_recorded(
    agency: Agency, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    now = timezone.now()
    Client.objects.filter(pk=agency.client.pk).update(next_review_at=now - timedelta(days=1))
    policy = agency.policy("daily")

    with django_capture_on_commit_callbacks(execute=True):
        report = assurance_sweep(now=now)

    assert report.raised == 1  # the client; the policies are not due yet
    alert = Alert.objects.get(kind=AlertKind.REVIEW_DUE)
    assert alert.incident_key == f"review_due:client:{agency.client.public_id}"
    assert alert.client_id == agency.client.pk
    assert len(mailoutbox) == 1
    assert mailoutbox[0].to == ["agency-owner@example.test"]  # the owner, not the admins
    assert mailoutbox[0].subject == f"[AgencyOps] Review due: client {agency.client.name}"

    lead = UserFactory(username="lee")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    from kernel.tenancy import actor_for_user

    with pytest.raises(Forbidden):
        review_record(actor=actor_for_user(lead), client=agency.client, note="looks fine")

    with django_capture_on_commit_callbacks(execute=True):
        review = review_record(actor=agency.actor, client=agency.client, note="3-2-1 fine", now=now)

    assert review.reviewed_by == agency.admin
    assert review.next_review_at == now + REVIEW_PERIOD
    agency.client.refresh_from_db()
    assert agency.client.next_review_at == now + REVIEW_PERIOD
    alert.refresh_from_db()
    assert alert.state == AlertState.RESOLVED
    assert "Reviewed by agency-admin" in alert.resolution
    assert mailoutbox[-1].subject.startswith("[AgencyOps] Resolved: Review due")
    assert assurance_sweep(now=now + timedelta(hours=1)).raised == 0

    # A policy past its date, reviewed with an explicit next date.
    policy.next_review_at = now - timedelta(hours=1)
    policy.save(update_fields=["next_review_at"])
    assert assurance_sweep(now=now).raised == 1
    chosen = now + timedelta(days=30)
    review_record(actor=agency.actor, policy=policy, next_review_at=chosen, now=now)
    policy.refresh_from_db()
    assert policy.next_review_at == chosen
    assert not Alert.objects.unresolved().exists()


# --- acknowledgement ---


def _alert_on(world: World, *, org_wide: bool = False) -> Alert:
    """An alert about client A's dataset, or (org_wide) about the shared bucket."""
    dataset = None if org_wide else world.dataset
    key = f"drill_slow:{dataset.public_id}" if dataset else f"posture:{world.location.public_id}:x"
    return alert_raise(
        organization=world.org,
        kind=AlertKind.DRILL_SLOW if dataset else AlertKind.POSTURE_REGRESSION,
        incident_key=key,
        title="t",
        message="m",
        dataset=dataset,
        location=None if dataset else world.location,
    )


def test_who_may_acknowledge(
    world: World, mailoutbox: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        about_client = _alert_on(world)
        org_wide = _alert_on(world, org_wide=True)
    assert org_wide.client_id is None
    sent = len(mailoutbox)

    for user in (world.member, world.auditor, world.ungranted_lead):
        with pytest.raises(Forbidden):
            alert_acknowledge(actor=world.actor(user), alert=about_client)
    with pytest.raises(Forbidden):
        alert_acknowledge(actor=world.actor(world.lead), alert=org_wide)

    acked = alert_acknowledge(actor=world.actor(world.lead), alert=about_client, note="on it")
    assert acked.state == AlertState.ACKNOWLEDGED
    assert acked.acknowledged_by == world.lead
    assert alert_acknowledge(actor=world.actor(world.admin), alert=org_wide).state == "acknowledged"

    # A repeat of an acknowledged incident notifies nobody and keeps it acknowledged.
    with django_capture_on_commit_callbacks(execute=True):
        again = _alert_on(world)
    assert (again.pk, again.state, again.occurrences) == (about_client.pk, "acknowledged", 2)
    assert len(mailoutbox) == sent

    alert_clear(organization=world.org, incident_key=about_client.incident_key, resolution="ok")
    about_client.refresh_from_db()
    with pytest.raises(Conflict):
        alert_acknowledge(actor=world.actor(world.admin), alert=about_client)


# --- the API ---


def test_alert_api_lists_by_grant_filters_and_acknowledges(world: World, as_user: Any) -> None:
    mine = _alert_on(world)
    org_wide = _alert_on(world, org_wide=True)
    theirs = alert_raise(
        organization=world.other_org,
        kind=AlertKind.RPO_MISSED,
        incident_key=f"rpo_missed:{world.other_dataset.public_id}",
        title="theirs",
        message="m",
        dataset=world.other_dataset,
    )

    def ids(user: Any, query: str = "") -> set[str]:
        response = as_user(user).get(f"/api/v1/alerts/{query}")
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert ids(world.admin) == {str(mine.public_id), str(org_wide.public_id)}
    assert ids(world.lead) == {str(mine.public_id)}
    assert ids(world.ungranted_lead) == set()
    assert ids(world.other_admin) == {str(theirs.public_id)}
    assert ids(world.admin, "?kind=posture_regression") == {str(org_wide.public_id)}
    assert ids(world.admin, f"?dataset={world.dataset.public_id}") == {str(mine.public_id)}
    assert ids(world.admin, f"?client={world.client.public_id}") == {str(mine.public_id)}
    assert ids(world.admin, "?state=resolved") == set()
    assert as_user(world.admin).get("/api/v1/alerts/?state=bogus").status_code == 400

    detail = as_user(world.lead).get(f"/api/v1/alerts/{mine.public_id}/")
    assert detail.status_code == 200
    assert detail.json()["dataset"] == str(world.dataset.public_id)
    assert as_user(world.lead).get(f"/api/v1/alerts/{org_wide.public_id}/").status_code == 404

    denied = as_user(world.member).post(f"/api/v1/alerts/{mine.public_id}/acknowledge/", {})
    assert denied.status_code == 403
    done = as_user(world.lead).post(
        f"/api/v1/alerts/{mine.public_id}/acknowledge/", {"note": "looking"}, format="json"
    )
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "acknowledged"
    assert done.json()["acknowledged_by"] == "lead"
    assert ids(world.admin, "?state=acknowledged") == {str(mine.public_id)}


def test_alert_list_query_count_is_pinned(world: World, as_user: Any) -> None:
    def grow(count: int) -> None:
        for index in range(count):
            dataset = clients_services.dataset_register(
                actor=Actor.system(world.org),
                client=world.client,
                name=f"D{Alert.objects.count()}-{index}",
                kind="raw_client_data",
                location=world.location,
                path=f"datasets/d{Alert.objects.count()}-{index}",
            )
            alert_raise(
                organization=world.org,
                kind=AlertKind.BACKUP_FAILED,
                incident_key=f"backup_failed:{dataset.public_id}:{world.location.public_id}",
                title="t",
                message="m",
                dataset=dataset,
                location=world.location,
            )
            alert_acknowledge(actor=world.actor(world.admin), alert=Alert.objects.first())

    def count(user: Any) -> int:
        with CaptureQueriesContext(connection) as queries:
            assert as_user(user).get("/api/v1/alerts/").status_code == 200
        return len(queries)

    grow(2)
    small = {"admin": count(world.admin), "lead": count(world.lead)}
    grow(6)
    assert (
        {"admin": count(world.admin), "lead": count(world.lead)}
        == small
        == {
            "admin": ADMIN_LIST_QUERIES,
            "lead": LEAD_LIST_QUERIES,
        }
    )


# the actor's membership, the count, the page (one join); a lead's actor also reads its grants
ADMIN_LIST_QUERIES = 3
LEAD_LIST_QUERIES = 5


def test_reviews_api_records_and_lists_by_grant(world: World, as_user: Any) -> None:
    from backups.models import BackupPolicy

    world.policy_a = BackupPolicy.objects.create(
        organization=world.org, name="ours", frequency="daily"
    )
    now = timezone.now()
    Client.objects.filter(pk=world.client.pk).update(next_review_at=now - timedelta(days=1))
    assurance_sweep(now=now)
    assert Alert.objects.unresolved().filter(kind=AlertKind.REVIEW_DUE).count() == 1

    refused = as_user(world.lead).post(
        "/api/v1/reviews/", {"client": str(world.client.public_id)}, format="json"
    )
    assert refused.status_code == 403
    both = as_user(world.admin).post(
        "/api/v1/reviews/",
        {"client": str(world.client.public_id), "policy": str(world.policy_a.public_id)},
        format="json",
    )
    assert both.status_code == 400
    past = as_user(world.admin).post(
        "/api/v1/reviews/",
        {"client": str(world.client.public_id), "next_review_at": "2001-01-01T00:00:00Z"},
        format="json",
    )
    assert past.status_code == 400
    assert "next_review_at" in past.json()["fields"]
    created = as_user(world.admin).post(
        "/api/v1/reviews/",
        {"client": str(world.client.public_id), "note": "fits"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["subject"], body["client"], body["reviewed_by"]) == (
        "client",
        str(world.client.public_id),
        "admin",
    )
    assert not Alert.objects.unresolved().exists()
    neither = as_user(world.admin).post("/api/v1/reviews/", {"note": "x"}, format="json")
    assert neither.status_code == 400
    foreign = as_user(world.admin).post(
        "/api/v1/reviews/", {"client": str(world.other_client.public_id)}, format="json"
    )
    assert foreign.status_code == 400  # not visible: refused like an unknown id

    review_record(actor=world.actor(world.admin), client=world.client_b)
    listed = as_user(world.lead).get("/api/v1/reviews/").json()["results"]
    assert [row["client"] for row in listed] == [str(world.client.public_id)]
    assert len(as_user(world.admin).get("/api/v1/reviews/").json()["results"]) == 2


def test_notification_settings_never_reveal_the_webhook_url(
    world: World,
    as_user: Any,
    webhook: WebhookServer,
    mailoutbox: list[Any],
    caplog: pytest.LogCaptureFixture,
    django_capture_on_commit_callbacks: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = as_user(world.admin)
    empty = admin.get("/api/v1/notification-settings/")
    assert empty.status_code == 200
    assert empty.json() == {
        "id": None,
        "email_enabled": True,
        "webhook_configured": False,
        "webhook_host": None,
    }
    for bad in ("ftp://example.test/hook", "javascript:alert(1)", "not a url"):
        refused = admin.put(
            "/api/v1/notification-settings/",
            {"email_enabled": True, "webhook_url": bad},
            format="json",
        )
        assert refused.status_code == 400, bad
        assert "webhook_url" in refused.json()["fields"]

    saved = admin.put(
        "/api/v1/notification-settings/",
        {"email_enabled": False, "webhook_url": webhook.url},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    assert saved.json()["webhook_configured"] is True
    assert saved.json()["webhook_host"] == "127.0.0.1"
    assert saved.json()["email_enabled"] is False
    read = admin.get("/api/v1/notification-settings/")
    row = NotificationSettings.objects.get(organization=world.org)
    assert SECRET_PATH.encode() not in bytes(row.webhook_url_sealed)
    # Leaving webhook_url out keeps it.
    kept = admin.put("/api/v1/notification-settings/", {"email_enabled": False}, format="json")
    assert kept.json()["webhook_configured"] is True

    tested = admin.post("/api/v1/notification-settings/test/", {"channel": "webhook"})
    assert tested.status_code == 200
    assert tested.json()["sent"] is True
    assert webhook.bodies()[0]["text"].startswith("[AgencyOps] Test notification")
    mail_test = admin.post("/api/v1/notification-settings/test/", {"channel": "email"})
    assert mail_test.json()["sent"] is True
    assert mailoutbox[-1].to == ["admin@example.test"]

    # An alert with e-mail disabled goes to the webhook only; a failing webhook's error
    # names the host, never the URL nor the remote's status.
    webhook.statuses = [503]
    with django_capture_on_commit_callbacks(execute=True):
        alert = _alert_on(world)
    assert list(alert.deliveries.values_list("channel", flat=True)) == [DeliveryChannel.WEBHOOK]
    assert alert.deliveries.get().error == (
        "webhook at 127.0.0.1 not reachable: no success (2xx) answer came back."
    )

    assert as_user(world.lead).get("/api/v1/notification-settings/").status_code == 403
    assert as_user(world.auditor).get("/api/v1/notification-settings/").status_code == 403
    other = as_user(world.other_admin).get("/api/v1/notification-settings/")
    assert other.json()["webhook_configured"] is False

    removed = admin.put(
        "/api/v1/notification-settings/", {"email_enabled": True, "webhook_url": ""}
    )
    assert removed.json()["webhook_configured"] is False
    for response in (saved, read, kept, tested, removed):
        assert SECRET_PATH not in response.content.decode()
        assert "s3cr3t" not in response.content.decode()
    assert "s3cr3t" not in caplog.text


def test_a_grant_on_one_dataset_shows_only_that_datasets_alerts(world: World, as_user: Any) -> None:
    # factory_boy builds a Dataset; its stubs say the factory class.
    sibling = cast(
        Dataset, DatasetFactory(client=world.client_b, location=world.dedicated_location)
    )
    clients_services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.ungranted_lead,
        client=world.client_b,
        dataset=world.dataset_b,
        permission="manage",
        reason="one dataset",
    )
    alerts = {
        dataset.pk: alert_raise(
            organization=world.org,
            kind=AlertKind.DRILL_OVERDUE,
            incident_key=f"drill_overdue:{dataset.public_id}",
            title="t",
            message="m",
            dataset=dataset,
        )
        for dataset in (world.dataset_b, sibling)
    }

    response = as_user(world.ungranted_lead).get("/api/v1/alerts/")

    assert [row["id"] for row in response.json()["results"]] == [
        str(alerts[world.dataset_b.pk].public_id)
    ]
    hidden = f"/api/v1/alerts/{alerts[sibling.pk].public_id}/"
    assert as_user(world.ungranted_lead).get(hidden).status_code == 404
    acked = alert_acknowledge(
        actor=world.actor(world.ungranted_lead), alert=alerts[world.dataset_b.pk]
    )
    assert acked.state == AlertState.ACKNOWLEDGED
