"""Issue 4 acceptance: from engagement end to verified, certified deletion, against moto's S3
server over HTTP with versioning on."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from rest_framework.test import APIClient

from backups.models import BackupSchedule, DatasetProtection
from backups.services import repository_base
from clients.models import Dataset
from kernel.exceptions import LegalHoldActive
from kernel.tenancy import Actor, actor_for_user
from lifecycle import services
from lifecycle.models import (
    AccessEvent,
    DeletionItem,
    DeletionRequest,
    DeletionSettings,
    PendingAccessEvent,
    RetentionObligation,
)
from tests.lifecycle.deletion_support import Scene, all_versions, build_scene, s3_client
from tests.s3server import s3_endpoint

__all__ = ["s3_endpoint"]


def actor_of(user: Any) -> Actor:
    actor = actor_for_user(user)
    assert actor is not None
    return actor


def api_as(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def scene(db: Any, tmp_path: Path, s3_endpoint: str) -> Scene:
    return build_scene(tmp_path, s3_endpoint)


def _prefixes(scene: Scene, dataset: Dataset) -> list[tuple[str, str]]:
    """(bucket, prefix) of every copy of a dataset: primary path and both repositories."""
    found = [(scene.primary.bucket, scene.primary_prefix(dataset))]
    found += [(t.bucket, repository_base(t, dataset) + "/") for t in scene.targets]
    return found


def _end_and_draft(scene: Scene, mailoutbox: Any, capture: Any) -> DeletionRequest:
    ended = (timezone.now() - dt.timedelta(days=31)).date()
    response = api_as(scene.agency.admin).post(
        f"/api/v1/engagements/{scene.engagement.public_id}/end/",
        {"ends_on": ended.isoformat()},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "ended"
    obligation = RetentionObligation.objects.get(engagement=scene.engagement)
    assert obligation.due_on == ended + dt.timedelta(days=30)
    with capture(execute=True):
        (request,) = services.deletion_requests_draft_due()
    assert services.deletion_requests_draft_due() == []  # an obligation drafts once
    assert mailoutbox, "admins are notified"
    assert "awaiting approval" in mailoutbox[0].subject
    return request


def test_engagement_end_to_certified_deletion(
    scene: Scene, mailoutbox: Any, django_capture_on_commit_callbacks: Any, tmp_path: Path
) -> None:
    survivors = {
        (b, p): all_versions(scene.endpoint, b, p)
        for ds in (scene.neighbour, scene.stranger)
        for b, p in _prefixes(scene, ds)
    }
    for ds in scene.datasets:
        for bucket, prefix in _prefixes(scene, ds):
            assert all_versions(scene.endpoint, bucket, prefix), (bucket, prefix)
    request = _end_and_draft(scene, mailoutbox, django_capture_on_commit_callbacks)

    # The plan names every copy with counts, before anyone approves.
    detail = api_as(scene.admin2).get(f"/api/v1/deletion-requests/{request.public_id}/").json()
    assert detail["state"] == "drafted"
    plan = detail["plan"]
    assert {d["name"] for d in plan["datasets"]} == {"Training data", "Eval set"}
    assert len(plan["locations"]) == 6  # 2 datasets x (primary + 2 targets)
    primary_rows = [e for e in plan["locations"] if e["role"] == "primary"]
    assert all(e["versions"] == 8 and e["delete_markers"] == 1 for e in primary_rows)
    assert all(e["versions"] > 0 and e["bytes"] > 0 for e in plan["locations"])
    assert len(plan["keys"]) == 6

    # A second admin approves (the request was drafted by the system).
    response = api_as(scene.admin2).post(
        f"/api/v1/deletion-requests/{request.public_id}/approve/",
        {"comment": "contract clause 12.3"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == "approved"
    assert PendingAccessEvent.objects.filter(payload__action="deletion_approved").exists() or (
        AccessEvent.objects.filter(action="deletion_approved").exists()
    )

    done = services.deletion_request_execute(str(request.public_id))
    assert done.state == "verified", (done.error, done.verification)
    assert services.deletion_request_execute(str(request.public_id)).state == "verified"

    for ds in scene.datasets:
        for bucket, prefix in _prefixes(scene, ds):
            assert all_versions(scene.endpoint, bucket, prefix) == [], (bucket, prefix)
    for (bucket, prefix), versions in survivors.items():
        assert sorted(all_versions(scene.endpoint, bucket, prefix)) == sorted(versions)
    for ds in scene.datasets:
        ds.refresh_from_db()
        assert ds.lifecycle_state == "deleted"
        protection = DatasetProtection.objects.get(dataset=ds)
        assert protection.wrapped_key is None
        assert protection.key_destroyed_at is not None
        assert not BackupSchedule.objects.filter(dataset=ds).exists()
    assert done.versions_deleted == done.versions_total > 0

    # The certificate: fetched, saved, verified offline; one changed byte fails.
    response = api_as(scene.agency.admin).get(
        f"/api/v1/deletion-requests/{request.public_id}/certificate/"
    )
    assert response.status_code == 200
    envelope = response.json()
    document = envelope["certificate"]
    assert document["client"]["name"] == scene.agency.client.name
    assert document["engagement"]["name"] == scene.engagement.name
    assert {loc["role"] for loc in document["locations"]} == {"primary", "backup"}
    assert document["verification"]["result"] == "passed"
    assert document["approved_by"][0]["user"] == "agency-admin2"
    key = api_as(scene.lead).get("/api/v1/signing-key/").json()["public_key"]
    assert envelope["public_key"] == key
    path = tmp_path / "certificate.json"
    certificate = done.certificate
    raw = services.certificate_file_bytes(certificate)
    path.write_bytes(raw)
    call_command("verify_certificate", str(path), "--public-key", key)
    for position in (5, 40, len(raw) // 2, len(raw) - 3, len(raw) - 1):
        tampered = bytearray(raw)
        tampered[position] = (tampered[position] + 1) % 256
        path.write_bytes(bytes(tampered))
        with pytest.raises(CommandError, match="INVALID"):
            call_command("verify_certificate", str(path), "--public-key", key)
        assert not services.certificate_verify(bytes(tampered), public_key=key)[0], position


def test_self_approval_is_refused_with_403(scene: Scene) -> None:
    dataset = scene.datasets[0]
    response = api_as(scene.agency.admin).post(
        "/api/v1/deletion-requests/",
        {
            "client": str(scene.agency.client.public_id),
            "dataset": str(dataset.public_id),
            "reason": "client asked",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    request_id = response.json()["id"]
    response = api_as(scene.agency.admin).post(
        f"/api/v1/deletion-requests/{request_id}/approve/", {}, format="json"
    )
    assert response.status_code == 403
    assert response.json()["code"] == "self_approval_forbidden"
    assert "four eyes" in response.json()["detail"]
    # a lead may request but not approve
    response = api_as(scene.lead).post(
        f"/api/v1/deletion-requests/{request_id}/approve/", {}, format="json"
    )
    assert response.status_code == 403
    # rejection by another admin is recorded
    response = api_as(scene.admin2).post(
        f"/api/v1/deletion-requests/{request_id}/reject/", {"comment": "not yet"}, format="json"
    )
    assert response.json()["state"] == "rejected"
    assert response.json()["approvals"][0]["comment"] == "not yet"


def test_second_approver_required(scene: Scene) -> None:
    DeletionSettings.objects.create(organization=scene.agency.org, approvals_required=2)
    request = services.deletion_request_create(
        actor=actor_of(scene.lead),
        client=scene.agency.client,
        dataset=scene.datasets[0],
        reason="client asked",
    )
    first = services.deletion_request_approve(
        actor=actor_of(scene.agency.admin), request=request, enqueue=False
    )
    assert first.state == "drafted"
    second = services.deletion_request_approve(
        actor=actor_of(scene.admin2), request=request, enqueue=False
    )
    assert second.state == "approved"
    assert second.approvals.count() == 2


def test_legal_hold_refuses_draft_approve_and_execute_and_suspends_pruning(scene: Scene) -> None:
    dataset = scene.datasets[0]
    client_id = str(scene.agency.client.public_id)
    body = {"client": client_id, "dataset": str(dataset.public_id), "reason": "asked"}
    request_id = (
        api_as(scene.lead).post("/api/v1/deletion-requests/", body, format="json").json()["id"]
    )
    response = api_as(scene.agency.admin).post(
        "/api/v1/legal-holds/", {"client": client_id, "reason": "litigation 2026-17"}, format="json"
    )
    assert response.status_code == 201, response.content
    hold_id = response.json()["id"]
    for ds in [*scene.datasets, scene.neighbour]:
        assert DatasetProtection.objects.get(dataset=ds).pruning_suspended
    assert not DatasetProtection.objects.get(dataset=scene.stranger).pruning_suspended
    from backups.services import dataset_prune

    assert dataset_prune(dataset, scene.targets[0]).skipped.startswith("legal hold")

    # drafting: 409
    response = api_as(scene.lead).post(
        "/api/v1/deletion-requests/",
        {"client": client_id, "dataset": str(scene.datasets[1].public_id), "reason": "asked"},
        format="json",
    )
    assert response.status_code == 409
    assert "legal hold" in response.json()["detail"]
    assert "litigation 2026-17" in response.json()["detail"]
    # approval: 409
    response = api_as(scene.admin2).post(
        f"/api/v1/deletion-requests/{request_id}/approve/", {}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["code"] == "legal_hold_active"
    # execution: approved before the hold, executed while it holds -> 409, nothing deleted
    request = DeletionRequest.objects.get(public_id=request_id)
    DeletionRequest.objects.filter(pk=request.pk).update(state="approved")
    with pytest.raises(LegalHoldActive) as refused:
        services.deletion_request_execute(request_id)
    assert refused.value.status == 409
    request.refresh_from_db()
    assert request.state == "approved"
    for bucket, prefix in _prefixes(scene, dataset):
        assert all_versions(scene.endpoint, bucket, prefix)
    assert DatasetProtection.objects.get(dataset=dataset).wrapped_key is not None

    # release: pruning resumes, execution proceeds
    response = api_as(scene.agency.admin).post(f"/api/v1/legal-holds/{hold_id}/release/")
    assert response.status_code == 200
    assert not DatasetProtection.objects.get(dataset=dataset).pruning_suspended
    assert services.deletion_request_execute(request_id).state == "verified"


def test_retain_obligation_blocks_with_reason(scene: Scene) -> None:
    admin = actor_of(scene.agency.admin)
    services.obligation_create(
        actor=admin,
        client=scene.agency.client,
        dataset=scene.datasets[0],
        kind="retain_for",
        retain_years=7,
        source="regulation",
        source_reference="HGB §257",
    )
    response = api_as(scene.lead).post(
        "/api/v1/deletion-requests/",
        {
            "client": str(scene.agency.client.public_id),
            "dataset": str(scene.datasets[0].public_id),
            "reason": "asked",
        },
        format="json",
    )
    assert response.status_code == 409
    assert "HGB §257" in response.json()["detail"]


class Crash(Exception):
    pass


def test_crash_mid_deletion_resumes_within_the_plan(scene: Scene) -> None:
    survivors = {
        (b, p): all_versions(scene.endpoint, b, p)
        for ds in (scene.neighbour, scene.stranger)
        for b, p in _prefixes(scene, ds)
    }
    request = services.deletion_request_create(
        actor=actor_of(scene.lead),
        client=scene.agency.client,
        engagement=scene.engagement,
        reason="contract ended",
    )
    services.deletion_request_approve(actor=actor_of(scene.admin2), request=request, enqueue=False)
    # New objects written after the plan under the plan's prefix are deleted too (re-listing).
    late_key = scene.primary_prefix(scene.datasets[1]) + "late.txt"
    scene.agency.raw_store(scene.primary.bucket).put(late_key, b"late")

    def crash(item: DeletionItem, deleted: int) -> None:
        raise Crash("worker killed after the first batch")

    with pytest.raises(Crash):
        services.deletion_request_execute(str(request.public_id), after_batch=crash)
    request.refresh_from_db()
    assert request.state == "executing"
    assert 0 < request.versions_deleted < request.versions_total
    # simulate a killed worker: its heartbeat goes stale; the redelivery resumes
    DeletionRequest.objects.filter(pk=request.pk).update(
        heartbeat_at=timezone.now() - dt.timedelta(minutes=5)
    )
    done = services.deletion_request_execute(str(request.public_id))
    assert done.state == "verified", (done.error, done.verification)
    assert services.deletion_request_execute(str(request.public_id)).state == "verified"
    for ds in scene.datasets:
        for bucket, prefix in _prefixes(scene, ds):
            assert all_versions(scene.endpoint, bucket, prefix) == []
    for (bucket, prefix), versions in survivors.items():
        assert sorted(all_versions(scene.endpoint, bucket, prefix)) == sorted(versions)


def test_live_claim_is_not_taken_twice(scene: Scene) -> None:
    request = services.deletion_request_create(
        actor=actor_of(scene.lead),
        client=scene.agency.client,
        dataset=scene.datasets[0],
        reason="asked",
    )
    DeletionRequest.objects.filter(pk=request.pk).update(
        state="executing", heartbeat_at=timezone.now()
    )
    again = services.deletion_request_execute(str(request.public_id))
    assert again.state == "executing"
    prefix = scene.primary_prefix(scene.datasets[0])
    assert all_versions(scene.endpoint, scene.primary.bucket, prefix)


def test_object_locked_target_retains_unreadable_versions_and_schedules_follow_up(
    db: Any, tmp_path: Path, s3_endpoint: str
) -> None:
    scene = build_scene(tmp_path, s3_endpoint, locked_target=True)
    dataset = scene.datasets[0]
    locked = scene.targets[0]
    client = s3_client(scene.endpoint)
    chunks_prefix = repository_base(locked, dataset) + "/data/"  # the packs
    until = timezone.now() + dt.timedelta(days=2)
    locked_versions = [
        (k, v) for k, v in all_versions(scene.endpoint, locked.bucket, chunks_prefix)
    ][:2]
    assert locked_versions
    for key, version in locked_versions:
        client.put_object_retention(
            Bucket=locked.bucket,
            Key=key,
            VersionId=version,
            Retention={"Mode": "COMPLIANCE", "RetainUntilDate": until},
        )
    request = services.deletion_request_create(
        actor=actor_of(scene.lead),
        client=scene.agency.client,
        dataset=dataset,
        reason="asked",
    )
    services.deletion_request_approve(actor=actor_of(scene.admin2), request=request, enqueue=False)
    done = services.deletion_request_execute(str(request.public_id))
    assert done.state == "verified", (done.error, done.verification)
    remaining = all_versions(scene.endpoint, locked.bucket, repository_base(locked, dataset) + "/")
    assert sorted(remaining) == sorted(locked_versions)
    entry = next(e for e in done.verification["locations"] if e["retained_by_lock"])
    assert entry["key_readable"] is False
    assert entry["retained_chunk_decrypts"] is False
    assert all("unreadable: key destroyed" in r["status"] for r in entry["retained_by_lock"])
    assert done.follow_up_at is not None
    assert abs((done.follow_up_at - until).total_seconds()) < 2
    certificate = done.certificate.document
    retained = [r for loc in certificate["locations"] for r in loc["retained_under_lock"]]
    assert len(retained) == 2
    assert all(r["readable"] is False for r in retained)
    # before the lock expires the follow-up does nothing; the other buckets are clean
    assert services.deletion_follow_ups_run(timezone.now()) == []
    for bucket, prefix in _prefixes(scene, dataset)[::2]:
        assert all_versions(scene.endpoint, bucket, prefix) == []


def test_pages_queue_detail_approve_and_certificate(scene: Scene) -> None:
    from django.test import Client as PageClient

    request = services.deletion_request_create(
        actor=actor_of(scene.lead),
        client=scene.agency.client,
        dataset=scene.datasets[0],
        reason="client asked",
    )
    lead, admin = PageClient(), PageClient()
    lead.force_login(scene.lead)
    admin.force_login(scene.admin2)
    queue = admin.get("/deletions/")
    assert queue.status_code == 200
    assert b"client asked" in queue.content
    page = f"/deletions/{request.public_id}/"
    assert b"Approve deletion" in admin.get(page).content
    assert b"Approve deletion" not in lead.get(page).content
    assert lead.post(page, {"decision": "approve"}).status_code == 403
    response = admin.post(page, {"decision": "approve", "comment": "ok"})
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.state == "approved"
    assert b"Progress" in admin.get(page).content
    services.deletion_request_execute(str(request.public_id))
    certificate = admin.get(f"/deletions/{request.public_id}/certificate/")
    assert certificate.status_code == 200
    assert b"Certificate of deletion" in certificate.content
    assert request.certificate.sha256.encode() in certificate.content


def test_engagement_end_button(scene: Scene) -> None:
    from django.test import Client as PageClient

    admin = PageClient()
    admin.force_login(scene.agency.admin)
    page = admin.get(f"/clients/{scene.agency.client.public_id}/")
    assert b"End engagement" in page.content
    response = admin.post(f"/engagements/{scene.engagement.public_id}/end/")
    assert response.status_code == 302
    scene.engagement.refresh_from_db()
    assert scene.engagement.status == "ended"
    assert RetentionObligation.objects.get(engagement=scene.engagement).due_on is not None
