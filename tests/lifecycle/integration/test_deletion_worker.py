"""A deletion executed by a real Celery worker: approved here, published to the broker, carried
out by a `celery worker` subprocess against moto's S3 server; nothing of the two datasets
remains, the neighbours survive, the certificate verifies."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from backups.services import repository_base
from kernel.claims import STALE_AFTER
from kernel.tenancy import actor_for_user
from lifecycle import services, tasks
from lifecycle.models import DeletionRequest
from tests.backups.integration.conftest import cluster  # noqa: F401  # the fixture
from tests.backups.integration.support import (
    VISIBILITY_TIMEOUT_SECONDS,
    Cluster,
    uses_filesystem_broker,
)
from tests.lifecycle.deletion_support import all_versions, build_scene, s3_client
from tests.s3server import s3_endpoint

__all__ = ["s3_endpoint"]

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_deletes_every_version_and_certifies(
    cluster: Cluster,  # noqa: F811  # the imported fixture
    tmp_path: Path,
    s3_endpoint: str,
) -> None:
    scene = build_scene(tmp_path, s3_endpoint)
    lead, admin2 = actor_for_user(scene.lead), actor_for_user(scene.admin2)
    assert lead is not None
    assert admin2 is not None
    request = services.deletion_request_create(
        actor=lead, client=scene.agency.client, engagement=scene.engagement, reason="ended"
    )
    services.deletion_request_approve(actor=admin2, request=request, enqueue=False)
    cluster.start_worker("worker")
    cluster.publish(tasks.deletion_request_execute_task, str(request.public_id))
    cluster.publish(tasks.deletion_request_execute_task, str(request.public_id))  # duplicate
    done = cluster.wait_for(
        lambda: DeletionRequest.objects.filter(pk=request.pk, state="verified").first(),
        120,
        "the worker to verify the deletion",
    )
    for dataset in scene.datasets:
        prefixes = [(scene.primary.bucket, scene.primary_prefix(dataset))]
        prefixes += [(t.bucket, repository_base(t, dataset) + "/") for t in scene.targets]
        for bucket, prefix in prefixes:
            assert all_versions(scene.endpoint, bucket, prefix) == []
    for survivor in (scene.neighbour, scene.stranger):
        assert all_versions(scene.endpoint, scene.primary.bucket, scene.primary_prefix(survivor))
    raw = services.certificate_file_bytes(done.certificate)
    published = services.signing_key_ensure(done.organization).public_key
    assert services.certificate_verify(raw, public_key=published)[0]
    assert done.versions_deleted == done.versions_total


def test_a_worker_killed_mid_deletion_is_resumed_within_the_plan(
    cluster: Cluster,  # noqa: F811  # the imported fixture
    tmp_path: Path,
    s3_endpoint: str,
) -> None:
    scene = build_scene(tmp_path, s3_endpoint)
    dataset = scene.datasets[0]
    target = scene.targets[0]
    # Enough versions (7 batches of 1,000) that the deletion can be interrupted midway.
    client = s3_client(scene.endpoint)
    base = repository_base(target, dataset) + "/"

    def put(i: int) -> None:
        for n in range(2):
            client.put_object(
                Bucket=target.bucket, Key=f"{base}chunks/filler-{i:05d}", Body=b"%d" % n
            )

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, range(3500)))
    survivors = {
        (b, p): all_versions(scene.endpoint, b, p)
        for ds in (scene.neighbour, scene.stranger)
        for b, p in [
            (scene.primary.bucket, scene.primary_prefix(ds)),
            *[(t.bucket, repository_base(t, ds) + "/") for t in scene.targets],
        ]
    }
    lead, admin2 = actor_for_user(scene.lead), actor_for_user(scene.admin2)
    assert lead is not None
    assert admin2 is not None
    request = services.deletion_request_create(
        actor=lead, client=scene.agency.client, dataset=dataset, reason="ended"
    )
    services.deletion_request_approve(actor=admin2, request=request, enqueue=False)
    first = cluster.start_worker("first-worker")
    cluster.publish(tasks.deletion_request_execute_task, str(request.public_id))
    cluster.wait_for(
        lambda: DeletionRequest.objects.filter(pk=request.pk, versions_deleted__gt=0).exists(),
        60,
        "the deletion to report progress",
    )
    first.kill()
    request.refresh_from_db()
    too_fast = f"The deletion ended ({request.state}) before it could be interrupted."
    assert request.state == "executing", too_fast
    assert 0 < request.versions_deleted < request.versions_total, too_fast
    # A claim is taken over once its heartbeat is STALE_AFTER old: age it rather than sleep.
    assert request.heartbeat_at is not None
    DeletionRequest.objects.filter(pk=request.pk).update(
        heartbeat_at=request.heartbeat_at - STALE_AFTER - timedelta(seconds=1)
    )
    if uses_filesystem_broker():
        # The filesystem transport dropped the killed worker's message; the recovery sweep
        # (beat, every minute) enqueues the stale request again. Send it as beat would.
        cluster.start_worker("second-worker")
        cluster.publish(tasks.deletions_recover_task)
    else:
        # Redis redelivers the unacknowledged message once its visibility timeout passed.
        assert request.started_at is not None
        visible_again = request.started_at + timedelta(seconds=VISIBILITY_TIMEOUT_SECONDS + 0.5)
        time.sleep(max(0.0, (visible_again - timezone.now()).total_seconds()))
        cluster.start_worker("second-worker")
    done = cluster.wait_for(
        lambda: (
            DeletionRequest.objects.filter(pk=request.pk, state__in=("verified", "failed"))
            .select_related("certificate")
            .first()
        ),
        120,
        "the interrupted deletion to finish on the second worker",
    )
    assert done.state == "verified", (done.error, cluster.logs())
    assert done.attempts == 2
    for bucket, prefix in [
        (scene.primary.bucket, scene.primary_prefix(dataset)),
        *[(t.bucket, repository_base(t, dataset) + "/") for t in scene.targets],
    ]:
        assert all_versions(scene.endpoint, bucket, prefix) == []
    for (bucket, prefix), versions in survivors.items():
        assert sorted(all_versions(scene.endpoint, bucket, prefix)) == sorted(versions)
    published = services.signing_key_ensure(done.organization).public_key
    assert services.certificate_verify(
        services.certificate_file_bytes(done.certificate), public_key=published
    )[0]
