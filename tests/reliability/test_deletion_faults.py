"""A certified deletion carried out through a proxy that breaks S3 requests.

Listing, batched multi-object deletes, key destruction and the verification listing all go
through tests/faultproxy.py at a 20% fault rate (four times the backup test's: a deletion
makes few requests, and each must be tried). Retried deletes and re-listing before each batch
must still end with every version gone, the neighbours untouched, and a verified certificate.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from backups.services import repository_base
from kernel.tenancy import actor_for_user
from lifecycle import services
from lifecycle.models import RetentionObligation
from tests.faultproxy import FaultProxy
from tests.lifecycle.deletion_support import all_versions, build_scene
from tests.reliability.test_s3_faults import _record

DELETION_FAULT_RATE = 0.20


@pytest.mark.integration
def test_a_deletion_through_injected_faults_completes_within_its_plan(
    db: Any, tmp_path: Path, s3_endpoint: str
) -> None:
    with FaultProxy(s3_endpoint, rate=0.0, seed=4242) as proxy:
        # Built over the proxy with no faults, so every location points at it.
        scene = build_scene(tmp_path, proxy.url)
        copies = [
            (location.bucket, prefix)
            for ds in scene.datasets
            for location, prefix in [
                (scene.primary, scene.primary_prefix(ds)),
                *[(t, repository_base(t, ds) + "/") for t in scene.targets],
            ]
        ]
        survivors = {
            (t.bucket, repository_base(t, ds) + "/"): all_versions(
                s3_endpoint, t.bucket, repository_base(t, ds) + "/"
            )
            for ds in (scene.neighbour, scene.stranger)
            for t in scene.targets
        }
        assert all(all_versions(s3_endpoint, b, p) for b, p in copies)

        services.engagement_end(
            actor=scene.agency.actor,
            engagement=scene.engagement,
            ends_on=(timezone.now() - dt.timedelta(days=31)).date(),
        )
        assert RetentionObligation.objects.filter(engagement=scene.engagement).exists()
        (request,) = services.deletion_requests_draft_due()
        approver = actor_for_user(scene.admin2)
        assert approver is not None
        services.deletion_request_approve(
            actor=approver, request=request, comment="faults", enqueue=False
        )

        proxy.rate = DELETION_FAULT_RATE
        requests_before = proxy.requests
        attempts = 0
        done = None
        # Like the worker's retries: a run that fails on a transient error is run again.
        while attempts < 5:
            attempts += 1
            done = services.deletion_request_execute(str(request.public_id))
            if done.state == "verified":
                break
        proxy.rate = 0.0
        deletion_requests = proxy.requests - requests_before

    assert done is not None
    assert done.state == "verified", (done.state, done.error)
    assert proxy.faults > 0
    for bucket, prefix in copies:
        assert all_versions(s3_endpoint, bucket, prefix) == [], (bucket, prefix)
    for (bucket, prefix), versions in survivors.items():
        assert sorted(all_versions(s3_endpoint, bucket, prefix)) == sorted(versions)
    _record(
        "deletion_faults",
        {
            "fault_rate": DELETION_FAULT_RATE,
            "requests": deletion_requests,
            "faults_injected": dict(proxy.injected),
            "execute_calls": attempts,
            "versions_deleted": done.versions_deleted,
            "result": done.state,
        },
    )
