"""3-2-1 computed from the snapshots really stored: copies, media, offsite, history, RPO.

The acceptance test runs real backups (local directories and a bucket on moto's S3 server) and
then travels in time by passing `now` and by adding Snapshot rows the way a later backup would.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backups.models import BackupPolicy, BackupRun, PostureAudit, RunStatus, Snapshot, Trigger
from backups.services import backup_run_create, backup_run_execute, policy_update
from backups.services.assurance import (
    ProtectionStatus,
    duration_words,
    protection_status,
    protection_status_many,
)
from backups.services.policies import dataset_policy_set, policy_create
from clients.models import Dataset, StorageLocation
from kernel.tenancy import Actor
from tests.backups.conftest import Agency, sample_files
from tests.conftest import World
from tests.factories import DatasetFactory, LocationFactory

NOW = datetime(2031, 1, 8, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def _back_up(dataset: Dataset) -> BackupRun:
    """A backup to every target of the dataset's policy, carried out here as the worker would."""
    targets = [t.location for t in dataset.protection.policy.policy_targets.all()]  # type: ignore[union-attr]
    run = backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=targets, enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    return done


def _snap(
    dataset: Dataset,
    location: StorageLocation,
    taken_at: datetime,
    *,
    forgotten_at: datetime | None = None,
) -> Snapshot:
    """A snapshot row as a later backup (or retention) would have left it."""
    return Snapshot.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        location=location,
        manifest_id=f"{taken_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}",
        taken_at=taken_at,
        forgotten_at=forgotten_at,
    )


def _rule(status: ProtectionStatus, name: str) -> tuple[bool, str]:
    (rule,) = [r for r in status.rules if r.name == name]
    return rule.met, rule.reason


# --- the acceptance: fail → pass as targets are added → fail when one goes stale ---


def test_three_two_one_flips_with_real_backups_and_back_when_a_target_goes_stale(
    agency: Agency,
) -> None:
    dataset = agency.dataset("Client uploads", files=sample_files())  # primary: a local directory
    policy = agency.policy("daily")
    disk = agency.local_location("A")
    policy_update(actor=agency.actor, policy=policy, targets=[disk])
    _back_up(dataset)
    first = Snapshot.objects.get(dataset=dataset, location=disk)

    one_target = protection_status(dataset, now=first.taken_at + HOUR)

    assert (one_target.copies, one_target.media, one_target.offsite) == (2, 1, False)
    assert not one_target.met
    assert one_target.reasons == (
        "only 2 copies: policy Daily — active client data has 1 target, 3 copies need 2",
        "only 1 medium: every counted copy is on Local filesystem",
        "no offsite copy: every counted copy is on Local filesystem, like the primary",
        "no version history: the primary is a local directory without versions, "
        "1 restorable snapshot",
    )
    assert one_target.rpo_met
    assert one_target.last_good_at == first.taken_at

    # An admin adds a bucket on another provider; the next backup writes to both targets.
    bucket = agency.s3_location("B")
    policy_update(actor=agency.actor, policy=policy, targets=[disk, bucket])
    _back_up(dataset)
    latest = Snapshot.objects.get(dataset=dataset, location=bucket)

    added = protection_status(dataset, now=latest.taken_at + HOUR)

    assert (added.copies, added.media, added.offsite, added.history) == (3, 2, True, True)
    assert added.met, added.reasons
    assert added.reasons == ()
    assert _rule(added, "copies") == (
        True,
        "3 copies: the primary and 2 targets with a snapshot at most 24 h old",
    )
    assert _rule(added, "media") == (True, "2 media: Local filesystem, MinIO")
    assert _rule(added, "offsite") == (True, "offsite copy on target B (MinIO in us-east-1)")
    assert _rule(added, "history") == (True, "3 restorable snapshots on the targets")
    assert [(t.location_name, t.fresh, t.restorable_snapshots) for t in added.targets] == [
        ("A", True, 2),
        ("B", True, 1),
    ]

    # Three days on, the bucket has had no backup (its endpoint went away, say) while the
    # local target kept getting them.
    later = latest.taken_at + 3 * DAY
    _snap(dataset, disk, later - 2 * HOUR)

    stale = protection_status(dataset, now=later)

    assert not stale.met
    assert stale.copies == 2
    assert stale.reasons[0] == "only 2 copies: target B's last snapshot is 3 days old, RPO is 24 h"
    assert stale.reasons[1:] == (
        "only 1 medium: every counted copy is on Local filesystem",
        "no offsite copy: every counted copy is on Local filesystem, like the primary",
    )
    assert not stale.offsite
    assert stale.rpo_met  # the local target is fresh: the newest recovery point is 2 h old
    assert [(t.location_name, t.fresh) for t in stale.targets] == [("A", True), ("B", False)]

    # A backup that reaches the bucket again makes it whole.
    _snap(dataset, bucket, later - HOUR)
    assert protection_status(dataset, now=later).met


# --- each rule on rows written directly ---


@pytest.fixture
def org(world: World) -> World:
    """Client A's dataset, primary on Amazon S3 in eu-west-1, on a policy with no target yet."""
    world.system = Actor.system(world.org)
    world.policy = policy_create(
        actor=world.system, name="Offsite daily", frequency="daily", keep_daily=30
    )
    dataset_policy_set(actor=world.system, dataset=world.dataset, policy=world.policy)
    world.dataset.refresh_from_db()
    return world


def _targets(world: World, *locations: StorageLocation) -> None:
    policy_update(actor=world.system, policy=world.policy, targets=list(locations))


def _aws(world: World, name: str, region: str = "eu-west-1", provider: str = "aws") -> Any:
    return LocationFactory(organization=world.org, name=name, provider=provider, region=region)


def _local(world: World, name: str) -> Any:
    return LocationFactory(
        organization=world.org,
        name=name,
        kind="local",
        provider="filesystem",
        bucket="",
        region="",
        prefix=f"/srv/{name}",
    )


def test_reasons_name_every_missing_copy(org: World) -> None:
    dataset = org.dataset
    assert protection_status(dataset, now=NOW).reasons[0] == (
        "only 1 copy: policy Offsite daily has 0 targets, 3 copies need 2"
    )
    b, c = _aws(org, "B", "us-east-1"), _aws(org, "C", "ap-south-1")
    _targets(org, b, c)
    _snap(dataset, b, NOW - 3 * DAY - 5 * HOUR)

    status = protection_status(dataset, now=NOW)

    assert status.copies == 1
    assert status.reasons[0] == (
        "only 1 copy: target B's last snapshot is 3 days 5 h old, RPO is 24 h; "
        "target C has no snapshot yet"
    )
    assert status.reasons[2] == "no offsite copy: no target holds a snapshot at most 24 h old"
    assert not status.rpo_met
    assert status.last_good_at == NOW - 3 * DAY - 5 * HOUR


def test_a_dataset_without_policy_says_so(org: World) -> None:
    from backups.models import DatasetProtection

    DatasetProtection.objects.filter(dataset=org.dataset).update(policy=None)

    status = protection_status(org.dataset, now=NOW)

    assert status.reasons[0] == "only 1 copy: the dataset has no backup policy"
    assert status.targets == ()
    assert not status.rpo_met


def test_freshness_follows_the_dataset_rpo_and_counts_at_most_rpo_old(org: World) -> None:
    dataset = org.dataset
    b, c = _aws(org, "B", "us-east-1"), _aws(org, "C", "us-west-2")
    _targets(org, b, c)
    Dataset.objects.filter(pk=dataset.pk).update(rpo=4 * HOUR)
    dataset.refresh_from_db()
    _snap(dataset, b, NOW - 4 * HOUR)  # exactly the RPO: still counts
    _snap(dataset, c, NOW - 4 * HOUR - timedelta(minutes=30))

    status = protection_status(dataset, now=NOW)

    assert status.copies == 2
    assert status.reasons[0] == (
        "only 2 copies: target C's last snapshot is 4 h 30 min old, RPO is 4 h"
    )
    assert status.rpo_met


def test_forgotten_snapshots_and_former_targets_do_not_count(org: World) -> None:
    dataset = org.dataset
    b, c, former = _aws(org, "B", "us-east-1"), _aws(org, "C", "us-west-2"), _aws(org, "Old")
    _targets(org, b, c)
    _snap(dataset, b, NOW - HOUR, forgotten_at=NOW - timedelta(minutes=5))
    _snap(dataset, c, NOW - HOUR)
    _snap(dataset, former, NOW - HOUR)  # the policy no longer writes there
    _snap(dataset, c, NOW + HOUR)  # after `now`: not yet taken at that moment

    status = protection_status(dataset, now=NOW)

    assert status.copies == 2
    assert [(t.location_name, t.restorable_snapshots) for t in status.targets] == [
        ("B", 0),
        ("C", 1),
    ]
    assert status.reasons[0] == "only 2 copies: target B has no snapshot yet"
    # Looking back to before the snapshot on B was forgotten, it counted.
    assert protection_status(dataset, now=NOW - timedelta(minutes=10)).copies == 3


def test_media_counts_providers_not_buckets_and_offsite_needs_another_region(org: World) -> None:
    dataset = org.dataset  # primary: aws, eu-west-1
    same_region, other_region = _aws(org, "Same region"), _aws(org, "Frankfurt", "eu-central-1")
    _targets(org, same_region, other_region)
    for target in (same_region, other_region):
        _snap(dataset, target, NOW - HOUR)

    status = protection_status(dataset, now=NOW)

    assert (status.copies, status.media, status.offsite) == (3, 1, True)
    assert status.reasons == ("only 1 medium: every counted copy is on Amazon S3",)
    assert _rule(status, "offsite") == (
        True,
        "offsite copy on target Frankfurt (Amazon S3 in eu-central-1)",
    )

    # Same provider, same region: not offsite. Nor is a bucket whose region is unknown.
    no_region = _aws(org, "No region", region="")
    _targets(org, same_region, no_region)
    _snap(dataset, no_region, NOW - HOUR)
    status = protection_status(dataset, now=NOW)
    assert not status.offsite
    assert _rule(status, "offsite") == (
        False,
        "no offsite copy: every counted copy is on Amazon S3 in eu-west-1, like the primary",
    )

    # Another provider is offsite even in the "same" region name.
    wasabi = _aws(org, "Wasabi", provider="wasabi")
    _targets(org, same_region, wasabi)
    _snap(dataset, wasabi, NOW - HOUR)
    status = protection_status(dataset, now=NOW)
    assert (status.media, status.offsite, status.met) == (2, True, True)
    assert _rule(status, "media") == (True, "2 media: Amazon S3, Wasabi")


def test_two_local_directories_are_neither_offsite_nor_two_media(org: World) -> None:
    primary = _local(org, "primary")
    dataset = DatasetFactory(client=org.client, location=primary)
    dataset_policy_set(actor=org.system, dataset=dataset, policy=org.policy)
    d1, d2 = _local(org, "d1"), _local(org, "d2")
    _targets(org, d1, d2)
    for target in (d1, d2):
        _snap(dataset, target, NOW - HOUR)

    status = protection_status(dataset, now=NOW)

    assert (status.copies, status.media, status.offsite) == (3, 1, False)
    assert _rule(status, "offsite") == (
        False,
        "no offsite copy: every counted copy is on Local filesystem, like the primary",
    )


def test_a_target_that_is_the_primary_location_is_no_extra_copy(org: World) -> None:
    dataset = org.dataset
    offsite = _aws(org, "Offsite", "us-east-1")
    _targets(org, dataset.location, offsite)
    _snap(dataset, dataset.location, NOW - HOUR)
    _snap(dataset, offsite, NOW - HOUR)

    status = protection_status(dataset, now=NOW)

    assert status.copies == 2
    assert status.reasons[0] == (
        "only 2 copies: target Shared bucket is the primary's own location"
    )


def test_history_from_primary_versioning_or_two_restorable_snapshots(org: World) -> None:
    dataset = org.dataset
    b = _aws(org, "B", "us-east-1")
    _targets(org, b)
    _snap(dataset, b, NOW - HOUR)

    def audit(versioning: str, at: datetime) -> None:
        PostureAudit.objects.create(
            organization=org.org,
            location=dataset.location,
            audited_at=at,
            trigger="scheduled",
            facts={"versioning": versioning, "mfa_delete": "Disabled"},
        )

    assert _rule(protection_status(dataset, now=NOW), "history") == (
        False,
        "no version history: the primary's versioning has not been audited, 1 restorable snapshot",
    )
    audit("Suspended", NOW - 3 * DAY)
    audit("Enabled", NOW - 2 * DAY)
    assert _rule(protection_status(dataset, now=NOW), "history") == (
        True,
        "versioning is enabled on the primary",
    )
    audit("Suspended", NOW - DAY)  # someone suspended it: the latest audit rules
    audit("Enabled", NOW + DAY)  # not yet read at `now`
    assert _rule(protection_status(dataset, now=NOW), "history") == (
        False,
        "no version history: the primary's versioning is Suspended, 1 restorable snapshot",
    )
    _snap(dataset, b, NOW - 2 * HOUR)
    assert _rule(protection_status(dataset, now=NOW), "history") == (
        True,
        "2 restorable snapshots on the targets",
    )


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ("deleted", "not protected: dataset deleted"),
        ("deletion_pending", "not protected: dataset deletion pending"),
    ],
)
def test_a_deleted_dataset_is_reported_but_not_failed(org: World, state: str, reason: str) -> None:
    Dataset.objects.filter(pk=org.dataset.pk).update(lifecycle_state=state)
    org.dataset.refresh_from_db()

    status = protection_status(org.dataset, now=NOW)

    assert (status.met, status.rpo_met, status.retired) == (True, True, True)
    assert status.reasons == (reason,)
    assert status.copies == 1  # the figures stay true
    assert not _rule(status, "copies")[0]


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (timedelta(seconds=20), "under 1 min"),
        (timedelta(minutes=45), "45 min"),
        (timedelta(hours=24), "24 h"),
        (timedelta(hours=1, minutes=30), "1 h 30 min"),
        (timedelta(hours=47, minutes=59), "47 h 59 min"),
        (timedelta(days=3, minutes=10), "3 days"),
        (timedelta(days=3, hours=5), "3 days 5 h"),
    ],
)
def test_durations_read_like_a_person_says_them(span: timedelta, words: str) -> None:
    assert duration_words(span) == words


# --- query count ---


def _datasets(
    world: World, count: int, targets: list[StorageLocation], now: datetime = NOW
) -> list[Dataset]:
    datasets: list[Any] = []
    for index in range(count):
        dataset = DatasetFactory(client=world.client, location=world.location)
        dataset_policy_set(actor=world.system, dataset=dataset, policy=world.policy)
        for position, target in enumerate(targets):
            _snap(dataset, target, now - (index + position) * HOUR)
        datasets.append(dataset)
    return datasets


def test_many_datasets_are_evaluated_in_a_constant_number_of_queries(
    org: World, django_assert_num_queries: Any
) -> None:
    targets = [_aws(org, "B", "us-east-1"), _local(org, "disk")]
    _targets(org, *targets)
    PostureAudit.objects.create(
        organization=org.org,
        location=org.location,
        audited_at=NOW - DAY,
        trigger="scheduled",
        facts={"versioning": "Enabled"},
    )
    one = _datasets(org, 1, targets)
    twenty = _datasets(org, 20, targets)

    with django_assert_num_queries(4):
        single = protection_status_many(one, now=NOW)
    with django_assert_num_queries(4):
        many = protection_status_many(twenty, now=NOW)

    assert set(many) == {d.pk for d in twenty}
    assert single[one[0].pk].met
    # rows at most 24 h old count: datasets 0..23 h for B, 1..24 h for the disk
    assert all(status.copies == 3 for status in many.values())
    assert all(status.history for status in many.values())
    assert protection_status_many([], now=NOW) == {}


# --- API ---


def _protected(world: World) -> World:
    world.system = Actor.system(world.org)
    policy = BackupPolicy.objects.create(organization=world.org, name="API", frequency="daily")
    world.b = _aws(world, "B", "us-east-1")
    world.c = _local(world, "disk")
    policy.policy_targets.create(location=world.b, position=0)
    policy.policy_targets.create(location=world.c, position=1)
    for dataset in (world.dataset, world.dataset_b):
        dataset_policy_set(actor=world.system, dataset=dataset, policy=policy)
    now = timezone.now()
    _snap(world.dataset, world.b, now - HOUR)
    _snap(world.dataset, world.c, now - HOUR)
    _snap(world.dataset_b, world.b, now - 3 * DAY)
    return world


def test_protection_api_lists_status_scoped_and_filtered(world: World, as_user: Any) -> None:
    w = _protected(world)

    owner = as_user(w.owner).get("/api/v1/protection/")
    assert owner.status_code == 200, owner.content
    rows = {row["dataset"]: row for row in owner.json()["results"]}
    assert set(rows) == {str(w.dataset.public_id), str(w.dataset_b.public_id)}
    good = rows[str(w.dataset.public_id)]
    assert (good["copies"], good["media"], good["offsite"], good["met"]) == (3, 2, True, True)
    assert good["client"] == str(w.client.public_id)
    assert [t["name"] for t in good["targets"]] == ["B", "disk"]
    assert [r["name"] for r in good["rules"]] == ["copies", "media", "offsite", "history"]
    bad = rows[str(w.dataset_b.public_id)]
    assert bad["met"] is False
    assert bad["rpo_met"] is False
    assert bad["reasons"][0].startswith("only 1 copy: target B's last snapshot is 3 days")

    failing = as_user(w.owner).get("/api/v1/protection/?met=false").json()
    assert [r["dataset"] for r in failing["results"]] == [str(w.dataset_b.public_id)]
    assert failing["count"] == 1
    by_client = as_user(w.owner).get(f"/api/v1/protection/?client={w.client.public_id}").json()
    assert [r["dataset"] for r in by_client["results"]] == [str(w.dataset.public_id)]
    one = as_user(w.owner).get(f"/api/v1/protection/?dataset={w.dataset_b.public_id}").json()
    assert [r["dataset"] for r in one["results"]] == [str(w.dataset_b.public_id)]

    lead = as_user(w.lead).get("/api/v1/protection/").json()
    assert [r["dataset"] for r in lead["results"]] == [str(w.dataset.public_id)]
    assert as_user(w.lead).get("/api/v1/protection/?met=maybe").status_code == 400


def _count(api: Any, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(url)
    assert response.status_code == 200, response.content
    assert response.json()["count"] >= 2
    return len(queries)


@pytest.mark.parametrize("url", ["/api/v1/protection/", "/api/v1/protection/?met=true"])
def test_protection_api_query_count_is_pinned(world: World, as_user: Any, url: str) -> None:
    w = _protected(world)
    w.policy = BackupPolicy.objects.get(organization=w.org, name="API")
    _datasets(w, 2, [w.b, w.c], now=timezone.now())
    first = (_count(as_user(w.admin), url), _count(as_user(w.lead), url))
    _datasets(w, 8, [w.b, w.c], now=timezone.now())
    # admin: membership, page count, page, then four for the batch; a lead pays two more for
    # its grants. With ?met= every dataset is evaluated and the list is paged in memory.
    expected = (7, 9) if "met" not in url else (6, 8)
    assert (_count(as_user(w.admin), url), _count(as_user(w.lead), url)) == first == expected
