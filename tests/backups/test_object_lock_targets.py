"""Object Lock retention asked per policy target, against moto's S3 server over HTTP: every
object a backup writes is retained, the retention is extended when a newer snapshot needs it,
the target's copy of the data key does not open with the master key, and a deletion leaves
only retained ciphertext whose every key is gone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backups import engine
from backups.models import DatasetProtection, PolicyTarget, Snapshot
from backups.services import (
    TargetRetention,
    backup_run_execute,
    backup_run_request,
    policy_update,
    repository_base,
)
from backups.services.object_lock import lock_wrapping_key_if_any
from backups.services.policies import dataset_key_context
from backups.services.posture import location_audit
from clients import services as clients_services
from clients.models import Dataset, StorageLocation
from kernel.crypto import master_key
from kernel.exceptions import ValidationFailed
from kernel.tenancy import actor_for_user
from lifecycle import services as lifecycle_services
from tests.backups.conftest import Agency, sample_files
from tests.factories import UserFactory
from tests.lifecycle.deletion_support import all_versions, s3_client, versioned_bucket


def _lock_bucket(agency: Agency, *, enabled: bool = True) -> str:
    return versioned_bucket(agency, "locked", object_lock=enabled)


def _locked_setup(
    agency: Agency, *, days: int = 3, mode: str = "GOVERNANCE", enabled: bool = True
) -> tuple[StorageLocation, Dataset]:
    bucket = _lock_bucket(agency, enabled=enabled)
    target = agency.s3_location("Locked target", bucket=bucket, create_bucket=False)
    policy = agency.policy("daily")
    policy_update(
        actor=agency.actor,
        policy=policy,
        targets=[target],
        target_retention=[TargetRetention(target, mode, days)],
    )
    dataset = agency.dataset("Training data", files=sample_files())
    return target, dataset


def _backup(agency: Agency, dataset: Dataset) -> Any:
    run = backup_run_request(actor=agency.actor, dataset=dataset, enqueue=False)
    return backup_run_execute(str(run.public_id))


def _retention_of(agency: Agency, bucket: str, key: str) -> tuple[str | None, dt.datetime | None]:
    head = s3_client(agency.s3_endpoint).head_object(Bucket=bucket, Key=key)
    return head.get("ObjectLockMode"), head.get("ObjectLockRetainUntilDate")


def test_every_object_of_a_backup_is_retained_as_the_target_asks(agency: Agency) -> None:
    target, dataset = _locked_setup(agency, days=3, mode="COMPLIANCE")
    started = timezone.now()
    done = _backup(agency, dataset)
    assert done.status == "succeeded", done.error
    base = repository_base(target, dataset)
    keys = [info.key for info in agency.raw_store(target.bucket).list(base + "/")]
    kinds = {k[len(base) + 1 :].split("/")[0] for k in keys}
    assert {"key", "data", "index", "snapshots"} <= kinds
    for key in keys:
        mode, until = _retention_of(agency, target.bucket, key)
        assert mode == "COMPLIANCE", key
        assert until is not None
        assert started + dt.timedelta(days=3) <= until <= timezone.now() + dt.timedelta(days=3)
    snapshot = Snapshot.objects.get(dataset=dataset, location=target)
    assert snapshot.retained_until is not None
    assert snapshot.retained_until >= started + dt.timedelta(days=3)


def test_the_key_copy_on_a_locked_target_needs_the_database_key(agency: Agency) -> None:
    target, dataset = _locked_setup(agency)
    assert _backup(agency, dataset).status == "succeeded"
    store = agency.raw_store(target.bucket)
    base = repository_base(target, dataset)
    context = dataset_key_context(dataset)
    with pytest.raises(engine.KeyUnwrapFailed):
        engine.load_data_key(store, base, master_key(), context=context)
    lock_key = lock_wrapping_key_if_any(dataset)
    assert lock_key is not None
    opened = engine.load_data_key(store, base, lock_key, context=context)
    protection = DatasetProtection.objects.get(dataset=dataset)
    assert opened == engine.unwrap_data_key(
        master_key(), bytes(protection.wrapped_key), context=context
    )


def test_a_newer_snapshot_extends_the_retention_of_what_it_reuses(agency: Agency) -> None:
    target, dataset = _locked_setup(agency, days=3)
    assert _backup(agency, dataset).status == "succeeded"
    base = repository_base(target, dataset)
    store = agency.raw_store(target.bucket)
    first_packs = [info.key for info in store.list(base + "/data/")]
    _, first_until = _retention_of(agency, target.bucket, first_packs[0])
    assert first_until is not None
    # A longer period: the last mark (3 days out) is now too close, so the next backup moves
    # everything, the packs it only reuses included.
    policy_update(
        actor=agency.actor,
        policy=agency.policy("daily"),
        target_retention=[TargetRetention(target, "GOVERNANCE", 10)],
    )
    before = timezone.now()
    assert _backup(agency, dataset).status == "succeeded"
    _, extended = _retention_of(agency, target.bucket, first_packs[0])
    assert extended is not None
    assert extended >= before + dt.timedelta(days=10)
    latest = Snapshot.objects.filter(dataset=dataset, location=target).first()
    assert latest is not None
    assert latest.retained_until is not None
    assert latest.retained_until >= before + dt.timedelta(days=10)
    # A run soon after finds the mark far enough out: nothing is extended again.
    mark = latest.retained_until
    assert _backup(agency, dataset).status == "succeeded"
    _, unchanged = _retention_of(agency, target.bucket, first_packs[0])
    assert unchanged == extended
    newest = Snapshot.objects.filter(dataset=dataset, location=target).first()
    assert newest is not None
    assert newest.retained_until == mark


def test_retention_on_a_bucket_without_object_lock_fails_clearly(agency: Agency) -> None:
    target, dataset = _locked_setup(agency, enabled=False)
    done = _backup(agency, dataset)
    assert done.status == "failed"
    assert "Object Lock off" in done.error
    audit = location_audit(target, trigger="manual")
    finding = next(f for f in audit.findings.all() if f.check_name == "object_lock")
    assert finding.severity == "high"
    assert "asks for Object Lock retention" in finding.message
    assert audit.facts["policy_retention"][0]["days"] == 3


def test_posture_and_evidence_show_the_retention_asked(agency: Agency) -> None:
    target, _dataset = _locked_setup(agency, days=7)
    audit = location_audit(target, trigger="manual")
    assert audit.facts["policy_retention"] == [
        {
            "policy": str(agency.policy("daily").public_id),
            "policy_name": agency.policy("daily").name,
            "mode": "GOVERNANCE",
            "days": 7,
        }
    ]
    # On, no default retention, but the policy asks: nothing to report about object lock.
    assert not [f for f in audit.findings.all() if f.check_name == "object_lock"]
    evidence = lifecycle_services.evidence_document(agency.client)
    daily = str(agency.policy("daily").public_id)
    policy = next(p for p in evidence["backup_policies"] if p["id"] == daily)
    assert policy["target_retention"] == [
        {"location": str(target.public_id), "mode": "GOVERNANCE", "days": 7}
    ]
    posture = next(
        loc for loc in evidence["storage_locations"] if loc["id"] == str(target.public_id)
    )
    assert posture["posture"]["object_lock"]["policy_retention"][0]["days"] == 7


def test_deleting_a_dataset_on_a_locked_target_leaves_only_unreadable_ciphertext(
    agency: Agency,
) -> None:
    target, dataset = _locked_setup(agency, days=2)
    assert _backup(agency, dataset).status == "succeeded"
    admin2 = UserFactory(username="second-admin")
    clients_services.membership_add(actor=agency.actor, user=admin2, role="admin")
    second = actor_for_user(admin2)
    assert second is not None
    request = lifecycle_services.deletion_request_create(
        actor=agency.actor, client=agency.client, dataset=dataset, reason="contract end"
    )
    lifecycle_services.deletion_request_approve(actor=second, request=request, enqueue=False)
    done = lifecycle_services.deletion_request_execute(str(request.public_id))
    assert done.state == "verified", (done.error, done.verification)
    base = repository_base(target, dataset)
    # Every object stays (the lock), the key's copy among them.
    left = all_versions(agency.s3_endpoint, target.bucket, base + "/")
    assert any(key == f"{base}/key" for key, _ in left)
    entry = next(e for e in done.verification["locations"] if e["role"] == "backup")
    assert entry["key_readable"] is False
    assert entry["retained_by_lock"]
    assert all(
        r["status"].endswith("— unreadable: key destroyed") and r["readable"] is False
        for r in entry["retained_by_lock"]
    )
    assert DatasetProtection.objects.get(dataset=dataset).lock_wrapping_key is None
    certificate = done.certificate.document
    retained = [r for loc in certificate["locations"] for r in loc["retained_under_lock"]]
    assert retained
    assert all(r["readable"] is False for r in retained)


def test_a_master_wrapped_key_copy_is_wrapped_again_once_the_target_is_locked(
    agency: Agency,
) -> None:
    bucket = _lock_bucket(agency, enabled=False)
    store = agency.raw_store(bucket)
    master, lock_key, data_key = (
        master_key(),
        engine.generate_data_key(),
        engine.generate_data_key(),
    )
    assert engine.init_repository(store, "r", master, data_key, context=b"c") is True
    assert engine.init_repository(
        store, "r", lock_key, data_key, context=b"c", earlier_keys=(master,)
    )
    assert engine.load_data_key(store, "r", lock_key, context=b"c") == data_key
    with pytest.raises(engine.KeyUnwrapFailed):
        engine.load_data_key(store, "r", master, context=b"c")
    # Same key again: nothing is written; a different key is refused.
    assert engine.init_repository(store, "r", lock_key, data_key, context=b"c") is False
    with pytest.raises(engine.RepositoryAlreadyInitialized):
        engine.init_repository(store, "r", lock_key, engine.generate_data_key(), context=b"c")


def test_the_api_sets_and_checks_target_retention(agency: Agency) -> None:
    bucket = _lock_bucket(agency)
    target = agency.s3_location("Locked target", bucket=bucket, create_bucket=False)
    local = agency.local_location("Local copies")
    policy = agency.policy("daily")
    api = APIClient()
    api.force_authenticate(agency.admin)
    url = f"/api/v1/policies/{policy.public_id}/"
    ok = api.patch(
        url,
        {
            "targets": [str(target.public_id), str(local.public_id)],
            "target_retention": [
                {"location": str(target.public_id), "mode": "COMPLIANCE", "days": 30}
            ],
        },
        format="json",
    )
    assert ok.status_code == 200, ok.json()
    assert ok.json()["target_retention"] == [
        {"location": str(target.public_id), "mode": "COMPLIANCE", "days": 30}
    ]
    # Replacing the targets keeps a kept target's retention.
    again = api.patch(url, {"targets": [str(target.public_id)]}, format="json")
    assert again.json()["target_retention"][0]["days"] == 30
    cases = [
        ({"location": str(local.public_id), "mode": "GOVERNANCE", "days": 5}, "location"),
        ({"location": str(target.public_id), "mode": "FOREVER", "days": 5}, "mode"),
        ({"location": str(target.public_id), "mode": "GOVERNANCE", "days": 0}, "days"),
    ]
    for entry, field in cases:
        response = api.patch(url, {"target_retention": [entry]}, format="json")
        assert response.status_code == 400, response.json()
        assert field in str(response.json()), response.json()
    assert PolicyTarget.objects.get(policy=policy, location=target).object_lock_days == 30


def test_retention_only_for_listed_targets_of_s3_kind(agency: Agency) -> None:
    bucket = _lock_bucket(agency)
    target = agency.s3_location("Locked target", bucket=bucket, create_bucket=False)
    other = agency.s3_location("Other bucket")
    with pytest.raises(ValidationFailed) as raised:
        policy_update(
            actor=agency.actor,
            policy=agency.policy("daily"),
            targets=[target],
            target_retention=[TargetRetention(other, "GOVERNANCE", 3)],
        )
    assert "target_retention.0.location" in raised.value.fields


def test_a_policy_class_its_targets_provider_lacks_is_refused(agency: Agency) -> None:
    minio = agency.s3_location("MinIO bucket")
    policy = agency.policy("daily")
    api = APIClient()
    api.force_authenticate(agency.admin)
    url = f"/api/v1/policies/{policy.public_id}/"
    assert api.patch(url, {"targets": [str(minio.public_id)]}, format="json").status_code == 200
    refused = api.patch(url, {"storage_class": "DEEP_ARCHIVE"}, format="json")
    assert refused.status_code == 400, refused.json()
    assert "storage_class" in str(refused.json())
    policy.refresh_from_db()
    assert policy.storage_class == "STANDARD"
    aws = agency.s3_location("AWS bucket", provider="aws")
    ok = api.patch(
        url, {"targets": [str(aws.public_id)], "storage_class": "DEEP_ARCHIVE"}, format="json"
    )
    assert ok.status_code == 200, ok.json()
    # Back to a provider without it: refused again, the targets unchanged.
    back = api.patch(url, {"targets": [str(minio.public_id)]}, format="json")
    assert back.status_code == 400
    assert [t.location for t in PolicyTarget.objects.filter(policy=policy)] == [aws]


def test_an_as_of_with_any_iso_offset_is_compared_in_utc(agency: Agency) -> None:
    # PostgreSQL refuses offsets past ±15:59 in a query: the filter converts to UTC first.
    api = APIClient()
    api.force_authenticate(agency.admin)
    far = api.get("/api/v1/snapshots/", {"as_of": "1158-04-07T14:29:22.8145-23:43"})
    assert far.status_code == 200, far.content
    assert far.json()["results"] == []
    edge = api.get("/api/v1/snapshots/", {"as_of": "0001-01-01T00:00:00+05:00"})
    assert edge.status_code == 400
    assert "as_of" in edge.json()["fields"]
