"""Backup API: policies, the dataset's policy and backup action, runs, snapshots, restores."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import BackupPolicy, BackupRun, RestoreRun, Snapshot
from backups.services import policies_create_defaults, protection_create
from tests.conftest import World
from tests.factories import DatasetFactory, LocationFactory


@pytest.fixture
def targets(world: World) -> World:
    """Default policies of org A point at a dedicated backup bucket."""
    world.backup_location = LocationFactory(organization=world.org, name="Backup bucket")
    for policy in policies_create_defaults(world.org):
        policy.policy_targets.create(location=world.backup_location)
    protection_create(world.dataset)
    protection_create(world.dataset_b)
    return world


def _snapshot(world: World, dataset: Any, hours_ago: int) -> Snapshot:
    return Snapshot.objects.create(
        organization=world.org,
        dataset=dataset,
        location=world.backup_location,
        manifest_id=f"m-{dataset.pk}-{hours_ago}",
        taken_at=timezone.now() - timedelta(hours=hours_ago),
        files=3,
        bytes=300,
    )


def test_registration_assigns_default_policy_by_kind(world: World, as_user: Any) -> None:
    api = as_user(world.lead)
    base = {"client": str(world.client.public_id), "location": str(world.location.public_id)}
    # In client A's folder on the shared bucket ("datasets", see tests/conftest.py).
    code = api.post(
        "/api/v1/datasets/",
        {**base, "name": "repo", "kind": "code_repository", "path": "datasets/repo"},
    )
    raw = api.post(
        "/api/v1/datasets/",
        {**base, "name": "raw", "kind": "raw_client_data", "path": "datasets/raw"},
    )
    records = api.post(
        "/api/v1/datasets/",
        {**base, "name": "fin", "kind": "business_records", "path": "datasets/fin"},
    )
    policies = {
        p.public_id: p.default_for for p in BackupPolicy.objects.filter(organization=world.org)
    }
    assert policies[UUID(code.json()["policy"])] == "continuous"
    assert policies[UUID(raw.json()["policy"])] == "daily"
    assert policies[UUID(records.json()["policy"])] == "records"


def test_lead_picks_policy_and_returns_to_default(targets: World, as_user: Any) -> None:
    api = as_user(targets.lead)
    weekly = BackupPolicy.objects.get(organization=targets.org, default_for="weekly")
    url = f"/api/v1/datasets/{targets.dataset.public_id}/"
    picked = api.patch(url, {"policy": str(weekly.public_id)})
    assert picked.status_code == 200, picked.content
    assert picked.json()["policy"] == str(weekly.public_id)
    live = api.patch(url, {"policy": None, "live_pipeline_input": True})
    continuous = BackupPolicy.objects.get(organization=targets.org, default_for="continuous")
    assert live.json()["policy"] == str(continuous.public_id)
    assert live.json()["live_pipeline_input"] is True
    foreign = BackupPolicy.objects.create(
        organization=targets.other_org, name="x", frequency="daily"
    )
    refused = api.patch(url, {"policy": str(foreign.public_id)})
    assert refused.status_code == 400
    assert "policy" in refused.json()["fields"]


def test_policy_api_admin_writes_targets_in_order(targets: World, as_user: Any) -> None:
    second = LocationFactory(organization=targets.org, name="Offsite")
    body = {
        "name": "Hourly, two targets",
        "frequency": "hourly",
        "keep_hourly": 24,
        "keep_daily": 7,
        "targets": [str(second.public_id), str(targets.backup_location.public_id)],
    }
    created = as_user(targets.admin).post("/api/v1/policies/", body)
    assert created.status_code == 201, created.content
    assert created.json()["targets"] == body["targets"]
    assert as_user(targets.lead).post("/api/v1/policies/", body).status_code == 403
    bad = as_user(targets.admin).post(
        "/api/v1/policies/", {**body, "name": "n2", "frequency": "sometimes", "keep_daily": -5}
    )
    assert bad.status_code == 400
    assert {"frequency", "keep_daily"} <= set(bad.json()["fields"])
    foreign = LocationFactory(organization=targets.other_org)
    cross = as_user(targets.admin).post(
        "/api/v1/policies/", {**body, "name": "n3", "targets": [str(foreign.public_id)]}
    )
    assert cross.status_code == 400


def test_policy_drill_period_is_set_through_the_api(targets: World, as_user: Any) -> None:
    created = as_user(targets.admin).post(
        "/api/v1/policies/", {"name": "Drilled", "frequency": "daily"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["drill_every"] == "P91DT00H00M00S"  # quarterly by default
    assert created.json()["next_review_at"]
    url = f"/api/v1/policies/{created.json()['id']}/"
    monthly = as_user(targets.admin).patch(url, {"drill_every": "P30D"}, format="json")
    assert monthly.status_code == 200, monthly.content
    assert monthly.json()["drill_every"] == "P30DT00H00M00S"
    too_often = as_user(targets.admin).patch(url, {"drill_every": "PT1H"}, format="json")
    assert too_often.status_code == 400
    assert "drill_every" in too_often.json()["fields"]
    by_hand = as_user(targets.admin).patch(url, {"drill_every": None}, format="json")
    assert by_hand.status_code == 200
    assert by_hand.json()["drill_every"] is None
    review = as_user(targets.admin).patch(
        url, {"next_review_at": "2030-01-01T00:00:00Z"}, format="json"
    )
    assert review.json()["next_review_at"] != "2030-01-01T00:00:00Z"  # set by recording a review


def test_backup_action_returns_202_with_a_pending_run(targets: World, as_user: Any) -> None:
    response = as_user(targets.lead).post(f"/api/v1/datasets/{targets.dataset.public_id}/backup/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "pending"
    assert body["trigger"] == "api"
    assert body["targets"] == [str(targets.backup_location.public_id)]
    assert body["requested_by"] == "lead"
    again = as_user(targets.lead).post(f"/api/v1/datasets/{targets.dataset.public_id}/backup/")
    assert again.status_code == 409
    assert "already pending or running" in again.json()["detail"]
    detail = as_user(targets.lead).get(f"/api/v1/backup-runs/{body['id']}/")
    assert detail.status_code == 200
    assert detail.json()["progress_percent"] == 0
    member = as_user(targets.member).post(f"/api/v1/datasets/{targets.dataset.public_id}/backup/")
    assert member.status_code == 403


def test_backup_without_targets_is_a_clear_400(world: World, as_user: Any) -> None:
    response = as_user(world.lead).post(f"/api/v1/datasets/{world.dataset.public_id}/backup/")
    assert response.status_code == 400
    assert "no targets" in response.json()["detail"]


def test_snapshots_as_of_gives_the_point_in_time(targets: World, as_user: Any) -> None:
    old = _snapshot(targets, targets.dataset, 48)
    mid = _snapshot(targets, targets.dataset, 24)
    _snapshot(targets, targets.dataset, 1)
    as_of = (timezone.now() - timedelta(hours=12)).isoformat()
    response = as_user(targets.lead).get(
        "/api/v1/snapshots/", {"dataset": str(targets.dataset.public_id), "as_of": as_of}
    )
    assert response.status_code == 200
    ids = [row["id"] for row in response.json()["results"]]
    assert ids == [str(mid.public_id), str(old.public_id)]
    bad = as_user(targets.lead).get("/api/v1/snapshots/", {"as_of": "yesterday"})
    assert bad.status_code == 400


def test_restore_action(targets: World, as_user: Any) -> None:
    snapshot = _snapshot(targets, targets.dataset, 2)
    url = f"/api/v1/snapshots/{snapshot.public_id}/restore/"
    response = as_user(targets.member).post(url, {"path_prefix": "notes"})
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["destination_location"] == str(targets.dataset.location.public_id)
    # the default: inside the client's folder on the dataset's (shared) location
    assert body["destination_path"].startswith(f"datasets/restores/{targets.dataset.public_id}-")
    assert body["path_prefix"] == "notes"
    assert RestoreRun.objects.get(public_id=body["id"]).requested_by == targets.member
    escape = as_user(targets.member).post(url, {"destination_path": "../../etc"})
    assert escape.status_code == 400
    absolute = as_user(targets.member).post(url, {"destination_path": "/etc"})
    assert absolute.status_code == 400
    assert as_user(targets.auditor).post(url, {}).status_code == 403
    assert as_user(targets.ungranted_lead).post(url, {}).status_code == 404
    detail = as_user(targets.member).get(f"/api/v1/restores/{body['id']}/")
    assert detail.json()["status"] == "pending"


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/snapshots/",
        "/api/v1/backup-runs/",
        "/api/v1/restores/",
        "/api/v1/policies/",
        "/api/v1/datasets/",
    ],
)
def test_backup_lists_have_pinned_query_counts(targets: World, as_user: Any, url: str) -> None:
    def grow(n: int) -> None:
        for i in range(n):
            dataset = DatasetFactory(client=targets.client, location=targets.location)
            protection_create(dataset)
            snapshot = _snapshot(targets, dataset, i + 1)
            run = BackupRun.objects.create(
                organization=targets.org, dataset=dataset, trigger="manual", status="succeeded"
            )
            run.run_targets.create(dataset=dataset, location=targets.backup_location, active=False)
            snapshot.run = run
            snapshot.save()
            RestoreRun.objects.create(
                organization=targets.org,
                dataset=dataset,
                snapshot=snapshot,
                destination_location=targets.location,
                destination_path="r",
            )
            BackupPolicy.objects.create(
                organization=targets.org, name=f"p{url}{i}{n}", frequency="daily"
            )

    def count(user: Any) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = as_user(user).get(url)
        assert response.status_code == 200
        assert response.json()["count"] >= 2
        return len(queries)

    grow(2)
    first = (count(targets.admin), count(targets.lead))
    grow(5)
    assert (count(targets.admin), count(targets.lead)) == first
    # admins: membership + count + page (+ prefetches); leads add two grant reads
    assert first[1] == first[0] + 2
    assert first[0] <= 5
