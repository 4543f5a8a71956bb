"""Cold tiers (issue 14): a policy that stores file content in DEEP_ARCHIVE, on moto's S3 server
over HTTP. Restores, verifies, drills and downloads retrieve that content first (RestoreObject),
with progress on the run record, then read it byte for byte; a drill records the retrieval
apart and compares restore plus retrieval with the RTO; a wait past the limit fails clearly; the
tiering fix uses only classes a provider has; the cost estimate has a retrieval line.

moto completes a retrieval at once. Where a test needs one still under way, the state S3
answered (a real HEAD to moto) is reported as "ongoing" for the first checks, and the wait's
clock is a fake one that sleeps advance: a double of time, never of S3.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from backups import engine
from backups.models import (
    BackupPolicy,
    PostureFix,
    RestoreRun,
    RunStatus,
    Snapshot,
    StorageClass,
    Trigger,
)
from backups.services import archive as archive_module
from backups.services import (
    backup_run_create,
    backup_run_execute,
    repository_base,
    restore_request,
    restore_run_execute,
    snapshot_verify,
)
from backups.services.archive import archive_retrieve, retrieval_message
from backups.services.cost import cost_estimate
from backups.services.drills import drill_start
from backups.services.policies import dataset_data_key, dataset_policy_set, policy_create
from backups.services.posture.fixes import posture_fix_apply, tiering_rule
from backups.services.storage_classes import provider_has_class
from backups.services.stores import store_for_location
from backups.storage import ArchiveState, S3ObjectStore
from clients import services as clients_services
from clients.models import Dataset, Provider, StorageLocation
from kernel.exceptions import ValidationFailed
from tests.backups.conftest import TEST_CREDENTIALS, Agency, read_files, sample_files
from tests.s3server import TEST_REGION


@pytest.fixture(autouse=True)
def scratch(settings: Any, tmp_path: Path) -> Path:
    root = tmp_path / "scratch"
    settings.AGENCYOPS_SCRATCH_DIR = root
    return root


class FakeTime:
    """The wait's clock: sleeping advances it, nothing really sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0
        self.on_sleep: list[Any] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds
        for hook in self.on_sleep:
            hook()


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(archive_module, "_clock", fake.clock)
    monkeypatch.setattr(archive_module, "_sleep", fake.sleep)
    return fake


def still_ongoing(monkeypatch: pytest.MonkeyPatch, checks: int | None) -> list[str]:
    """S3's answer (a real HEAD) for each key, but "ongoing" for a retrieved object's first
    `checks` HEADs (None: for ever). Returns the keys checked, in order."""
    real = archive_module.archive_state_read
    seen: list[str] = []

    def read(store: S3ObjectStore, key: str) -> ArchiveState | None:
        state = real(store, key)
        seen.append(key)
        done = [k for k in seen if k == key]
        # The first HEAD comes before asking: `checks` more answer "ongoing".
        if (
            state is not None
            and state.restore == "done"
            and (checks is None or len(done) <= checks + 1)
        ):
            return replace(state, restore="ongoing")
        return state

    monkeypatch.setattr(archive_module, "archive_state_read", read)
    return seen


def aws_location(agency: Agency, name: str) -> StorageLocation:
    """A bucket on moto recorded as an AWS location: AWS has the archive classes."""
    bucket = f"cold-{uuid.uuid4().hex[:16]}"
    agency.raw_store(bucket).create_bucket()
    return clients_services.location_create(
        actor=agency.actor,
        name=name,
        kind="s3",
        provider=Provider.AWS,
        endpoint_url=agency.s3_endpoint,
        region=TEST_REGION,
        bucket=bucket,
        prefix="backups",
        credentials=dict(TEST_CREDENTIALS),
    )


class Cold:
    def __init__(self, agency: Agency) -> None:
        self.agency = agency
        self.files = sample_files()
        self.location = aws_location(agency, "Deep archive bucket")
        self.policy = policy_create(
            actor=agency.actor,
            name="Archive",
            frequency="monthly",
            storage_class=StorageClass.DEEP_ARCHIVE,
            targets=[self.location],
        )
        self.dataset = agency.dataset("Finished project", files=self.files)
        dataset_policy_set(actor=agency.actor, dataset=self.dataset, policy=self.policy)
        run = backup_run_create(
            dataset=self.dataset, trigger=Trigger.MANUAL, targets=[self.location], enqueue=False
        )
        done = backup_run_execute(str(run.public_id), final_attempt=True)
        assert done is not None
        assert done.status == RunStatus.SUCCEEDED, done.error
        self.snapshot = Snapshot.objects.select_related("location").get(run=done)
        self.store = agency.raw_store(self.location.bucket)
        self.base = repository_base(self.location, self.dataset)

    def content_keys(self) -> list[str]:
        return engine.objects_to_read(
            engine.Target(self.store, self.base),
            dataset_data_key(self.dataset),
            [self.snapshot.manifest_id],
        )

    def restore_states(self) -> set[str]:
        states = [self.store.archive_state(key) for key in self.content_keys()]
        return {state.restore for state in states if state is not None}


@pytest.fixture
def cold(agency: Agency) -> Cold:
    return Cold(agency)


def test_the_backup_writes_file_content_to_deep_archive(cold: Cold) -> None:
    keys = cold.content_keys()
    assert keys
    assert {cold.store.archive_state(k).storage_class for k in keys} == {"DEEP_ARCHIVE"}  # type: ignore[union-attr]  # every key exists
    assert engine.cold_objects(engine.Target(cold.store, cold.base)) == set(keys)
    assert cold.restore_states() == {"none"}


def test_a_restore_retrieves_first_with_progress_on_its_record_then_restores_every_byte(
    cold: Cold, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    still_ongoing(monkeypatch, checks=2)
    restore = restore_request(
        actor=None, snapshot=cold.snapshot, destination_path=str(tmp_path / "out"), enqueue=False
    )
    shown: list[str] = []
    fake_time.on_sleep.append(
        lambda: shown.append(RestoreRun.objects.get(pk=restore.pk).retrieval_status)
    )

    done = restore_run_execute(str(restore.public_id))

    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    assert read_files(tmp_path / "out") == cold.files
    total = len(cold.content_keys())
    # While it waited, the record said so (and beat: the wait reports between checks).
    assert retrieval_message(0, total) in shown
    assert fake_time.slept == pytest.approx(2 * 300)
    assert done.retrieval_duration == timedelta(seconds=600)
    assert done.retrieval_status == "archive retrieval done after 10 min"
    assert cold.restore_states() == {"done"}  # asked of S3 itself, not only reported


def test_a_verify_that_reads_data_retrieves_first_and_one_that_only_lists_does_not(
    cold: Cold,
) -> None:
    listed = snapshot_verify(cold.snapshot, read_data_subset=0.0, progress=pytest.fail)
    assert listed.ok
    assert cold.restore_states() == {"none"}

    heard: list[str] = []
    report = snapshot_verify(cold.snapshot, read_data_subset=1.0, progress=heard.append)

    total = len(cold.content_keys())
    assert report.ok
    assert report.chunks_read == report.chunks_referenced > 0
    assert heard[-1] == retrieval_message(total, total)
    assert cold.restore_states() == {"done"}


def test_a_drill_records_retrieval_apart_and_compares_their_sum_with_the_rto(
    cold: Cold, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    still_ongoing(monkeypatch, checks=3)  # 15 minutes of retrieval on the wait's clock
    drill = drill_start(actor=cold.agency.actor, dataset=cold.dataset, enqueue=False)
    # The restore alone takes seconds: only with the retrieval is the RTO missed.
    RestoreRun.objects.filter(pk=drill.pk).update(rto=timedelta(minutes=10))

    done = restore_run_execute(str(drill.public_id))

    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
    assert done.files_verified == len(cold.files)
    assert done.retrieval_duration == timedelta(minutes=15)
    assert done.measured_duration is not None
    assert done.measured_duration < timedelta(minutes=10)
    assert done.rto_met is False
    slow = [issue for issue in done.issues if "RTO" in issue]
    assert slow
    assert "15 min of archive retrieval" in slow[0]
    assert not Path(done.destination_path).exists()


def test_a_drill_without_a_wait_meets_the_rto(cold: Cold) -> None:
    drill = drill_start(actor=cold.agency.actor, dataset=cold.dataset, enqueue=False)
    done = restore_run_execute(str(drill.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, (done.error, done.issues)
    assert done.rto_met is True
    assert done.retrieval_duration is not None  # moto retrieved at once, and it was measured
    assert cold.restore_states() == {"done"}


def test_a_retrieval_past_the_limit_fails_the_restore_naming_what_is_still_archived(
    cold: Cold, tmp_path: Path, settings: Any, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    settings.AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS = 1
    still_ongoing(monkeypatch, checks=None)
    restore = restore_request(
        actor=None, snapshot=cold.snapshot, destination_path=str(tmp_path / "out"), enqueue=False
    )

    done = restore_run_execute(str(restore.public_id))

    assert done is not None
    total = len(cold.content_keys())
    assert done.status == RunStatus.FAILED
    assert f"{total} of {total} objects are still archived" in done.error
    assert "AGENCYOPS_ARCHIVE_MAX_WAIT_HOURS" in done.error
    assert fake_time.slept == pytest.approx(3600)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _api(user: Any) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_a_download_retrieves_first_and_while_retrieval_runs_says_so(
    cold: Cold, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"/api/v1/snapshots/{cold.snapshot.public_id}/download/"
    path = "models/weights.bin"
    checked = still_ongoing(monkeypatch, checks=None)

    waiting = _api(cold.agency.admin).get(url, {"path": path})

    assert waiting.status_code == 409
    assert "waiting for archive retrieval, 0 of" in waiting.json()["detail"]
    assert "try again once it is done" in waiting.json()["detail"]
    assert checked  # S3 was asked, not skipped
    monkeypatch.undo()

    response = _api(cold.agency.admin).get(url, {"path": path})

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == cold.files[path]


def test_the_wait_reports_between_checks_and_asks_only_once(
    cold: Cold, monkeypatch: pytest.MonkeyPatch, fake_time: FakeTime
) -> None:
    seen = still_ongoing(monkeypatch, checks=1)
    keys = cold.content_keys()
    heard: list[str] = []

    seconds = archive_retrieve(
        cold.store, keys, tier="Bulk", progress=heard.append, poll_seconds=20
    )

    assert seconds == pytest.approx(20)
    # Before, right after asking, then one poll: three HEADs per key.
    assert sorted(seen) == sorted(keys * 3)
    # The wait beats every 5 s while it sleeps, then says all are in.
    assert heard == [retrieval_message(0, len(keys))] * 5 + [
        retrieval_message(len(keys), len(keys))
    ]
    # A second call finds them retrieved: one HEAD each, nothing asked, nothing waited.
    again: list[str] = []
    assert archive_retrieve(cold.store, list(keys), progress=again.append) == 0.0
    assert len(seen) == len(keys) * 4
    assert again == [retrieval_message(len(keys), len(keys))]
    assert fake_time.slept == pytest.approx(20)


def test_local_targets_and_standard_content_skip_retrieval(agency: Agency) -> None:
    dataset: Dataset = agency.dataset("Warm", files={"a.txt": b"a"})
    disk = agency.local_location("Disk")
    run = backup_run_create(dataset=dataset, trigger=Trigger.MANUAL, targets=[disk], enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    snapshot = Snapshot.objects.get(run=done)
    assert (
        archive_module.archive_retrieve_for_read(
            store=store_for_location(disk),
            base=repository_base(disk, dataset),
            data_key=dataset_data_key(dataset),
            manifest_ids=[snapshot.manifest_id],
            progress=pytest.fail,
        )
        == 0.0
    )


# --- the tiering fix and the classes each provider has ---


@pytest.mark.parametrize(
    ("provider", "has"),
    [
        (Provider.AWS, {"STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"}),
        (Provider.GCS, {"STANDARD"}),
        (Provider.MINIO, {"STANDARD"}),
        (Provider.WASABI, {"STANDARD"}),
        (Provider.BACKBLAZE, {"STANDARD"}),
        ("unknown-provider", {"STANDARD"}),
    ],
)
def test_provider_has_class(provider: str, has: set[str]) -> None:
    assert {c for c in StorageClass.values if provider_has_class(provider, c)} == has


def test_the_tiering_fix_on_aws_uses_classes_that_read_at_once(agency: Agency) -> None:
    location = aws_location(agency, "AWS bucket")
    fix = posture_fix_apply(actor=agency.actor, location=location, action="apply_lifecycle")
    assert fix.succeeded, fix.error
    rules = agency.raw_store(location.bucket).client.get_bucket_lifecycle_configuration(
        Bucket=location.bucket
    )["Rules"]
    ours = next(r for r in rules if r["ID"].startswith("agencyops-tiering"))
    # Never GLACIER or DEEP_ARCHIVE: the rule covers keys, indexes and manifests too.
    assert [(t["Days"], t["StorageClass"]) for t in ours["Transitions"]] == [
        (30, "STANDARD_IA"),
        (90, "GLACIER_IR"),
    ]


@pytest.mark.parametrize(
    "provider", [Provider.MINIO, Provider.GCS, Provider.WASABI, Provider.BACKBLAZE]
)
def test_the_tiering_fix_refuses_a_provider_without_those_classes(
    agency: Agency, provider: str
) -> None:
    location = agency.s3_location(f"{provider} bucket")
    StorageLocation.objects.filter(pk=location.pk).update(provider=provider)
    location.refresh_from_db()
    with pytest.raises(ValidationFailed) as refused:
        posture_fix_apply(actor=agency.actor, location=location, action="apply_lifecycle")
    assert "location" in refused.value.fields
    assert "no infrequent-access or archive storage class" in str(refused.value)
    assert not PostureFix.objects.filter(location=location).exists()
    with pytest.raises(ValidationFailed):
        tiering_rule(location, agency.policy("daily"))


# --- cost ---


def test_the_cost_estimate_counts_the_drills_retrieval_as_its_own_line(
    cold: Cold, settings: Any
) -> None:
    warm = cold.agency.dataset("Warm data", files={"a.bin": b"x" * 5000})
    run = backup_run_create(
        dataset=warm, trigger=Trigger.MANUAL, targets=[cold.location], enqueue=False
    )
    assert backup_run_execute(str(run.public_id), final_attempt=True) is not None

    report = cost_estimate(actor=cold.agency.actor)

    policy = BackupPolicy.objects.get(pk=cold.policy.pk)
    assert policy.drill_every is not None
    month = timedelta(days=365.25 / 12)
    expected_bytes = Decimal(cold.snapshot.bytes) * Decimal(month / policy.drill_every)
    price = Decimal(settings.AGENCYOPS_RETRIEVAL_PRICES["aws"]["DEEP_ARCHIVE"]["Standard"])
    assert report.retrieval.bytes == int(expected_bytes)  # only the archive-class dataset
    assert report.retrieval.usd == expected_bytes * price / 1024**3
    assert report.retrieval.usd > 0
    assert report.names["retrieval"] == "Archive retrieval (restore drills)"
    storage = sum((line.usd for line in report.by_tier), Decimal(0))
    assert report.total == storage + report.retrieval.usd
    assert sum((line.usd for line in report.by_target), Decimal(0)) == report.total

    settings.AGENCYOPS_ARCHIVE_RETRIEVAL_TIER = "Bulk"
    bulk = cost_estimate(actor=cold.agency.actor).retrieval
    assert bulk.usd == expected_bytes * Decimal("0.0025") / 1024**3
