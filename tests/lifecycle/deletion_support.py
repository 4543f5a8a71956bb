"""An agency with a versioned primary bucket and two versioned backup targets on moto's S3
server (over HTTP), two datasets of one engagement and neighbours that must survive."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from backups.models import BackupPolicy
from backups.services import (
    backup_run_execute,
    backup_run_request,
    location_key,
    policy_update,
)
from clients import services as clients_services
from clients.models import Client, Dataset, Engagement, StorageLocation
from tests.backups.conftest import Agency, make_agency
from tests.factories import UserFactory
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
    )


def all_versions(endpoint: str, bucket: str, prefix: str = "") -> list[tuple[str, str]]:
    """Every version and delete marker under `prefix`, straight from list_object_versions."""
    client = s3_client(endpoint)
    found: list[tuple[str, str]] = []
    for page in client.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        found += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        found += [(m["Key"], m["VersionId"]) for m in page.get("DeleteMarkers", [])]
    return found


@dataclass
class Scene:
    agency: Agency
    admin2: Any
    lead: Any
    engagement: Engagement
    primary: StorageLocation
    targets: list[StorageLocation]
    datasets: list[Dataset]  # the engagement's two datasets
    neighbour: Dataset  # same client, no engagement: survives
    other_client: Client
    stranger: Dataset  # another client's dataset in the same buckets: survives
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return self.agency.s3_endpoint

    def primary_prefix(self, dataset: Dataset) -> str:
        return location_key(self.primary, dataset.path) + "/"


def versioned_bucket(agency: Agency, name: str, *, object_lock: bool = False) -> str:
    import uuid

    bucket = f"{name}-{uuid.uuid4().hex[:12]}"
    client = s3_client(agency.s3_endpoint)
    if object_lock:
        client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    else:
        client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def write_versions(scene_agency: Agency, location: StorageLocation, dataset: Dataset) -> None:
    """Several versions of each object and a delete marker on the primary bucket."""
    store = scene_agency.raw_store(location.bucket)
    base = location_key(location, dataset.path)
    for version in range(3):
        store.put(f"{base}/data/a.csv", b"a,%d\n" % version * 50)
        store.put(f"{base}/notes.txt", b"notes v%d " % version + dataset.name.encode())
    store.put(f"{base}/scratch/x.bin", b"scratch")
    store.delete_versions([(f"{base}/scratch/x.bin", None)])  # a delete marker


def backup_now(agency: Agency, dataset: Dataset) -> None:
    run = backup_run_request(actor=agency.actor, dataset=dataset, enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "succeeded", done.error


def build_scene(root: Path, endpoint: str, *, locked_target: bool = False) -> Scene:
    agency = make_agency(endpoint)
    admin2 = UserFactory(username="agency-admin2", email="admin2@example.test")
    clients_services.membership_add(actor=agency.actor, user=admin2, role="admin")
    agency.admin.email = "admin@example.test"
    agency.admin.save()
    lead = UserFactory(username="agency-lead")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    clients_services.grant_create(
        actor=agency.actor, grantee=lead, client=agency.client, permission="manage", reason="lead"
    )
    primary_bucket = versioned_bucket(agency, "primary")
    target_buckets = [
        versioned_bucket(agency, "target-a", object_lock=locked_target),
        versioned_bucket(agency, "target-b"),
    ]
    primary = agency.s3_location(
        "Primary bucket", bucket=primary_bucket, create_bucket=False, prefix="live"
    )
    targets = [
        agency.s3_location(f"Target {i}", bucket=b, create_bucket=False, prefix="backups")
        for i, b in enumerate(target_buckets)
    ]
    for default_for in ("daily", "records", "continuous", "weekly", "monthly"):
        policy_update(
            actor=agency.actor,
            policy=BackupPolicy.objects.get(organization=agency.org, default_for=default_for),
            targets=targets,
        )
    engagement = clients_services.engagement_create(
        actor=agency.actor,
        client=agency.client,
        name="Model build 2026",
        starts_on=dt.date(2026, 1, 1),
        deletion_due_days=30,
    )
    datasets = [
        agency.dataset(name, location=primary, engagement=engagement)
        for name in ("Training data", "Eval set")
    ]
    neighbour = agency.dataset("Neighbour data", location=primary)
    other_client = clients_services.client_create(actor=agency.actor, name="Other client")
    clients_services.namespace_assign(
        actor=agency.actor, location=primary, client=other_client, path="other"
    )
    stranger = clients_services.dataset_register(
        actor=agency.actor,
        client=other_client,
        name="Training data",
        kind="raw_client_data",
        classification="confidential",
        location=primary,
        path="other/training-data",
    )
    for dataset in [*datasets, neighbour, stranger]:
        write_versions(agency, primary, dataset)
        backup_now(agency, dataset)
        agency.raw_store(primary_bucket).put(
            location_key(primary, dataset.path) + "/notes.txt", b"changed " + dataset.name.encode()
        )
        backup_now(agency, dataset)
    return Scene(
        agency=agency,
        admin2=admin2,
        lead=lead,
        engagement=engagement,
        primary=primary,
        targets=targets,
        datasets=datasets,
        neighbour=neighbour,
        other_client=other_client,
        stranger=stranger,
        buckets=[primary_bucket, *target_buckets],
    )
