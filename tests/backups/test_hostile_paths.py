"""Hostile paths: restore destinations and filters that try to leave where they belong, and
object keys in a primary bucket that a file system cannot hold safely."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from backups.models import BackupRun, RestoreRun, RunStatus, Snapshot
from backups.services import (
    backup_run_create,
    backup_run_execute,
    restore_request,
    restore_run_execute,
)
from clients import services as clients_services
from tests.backups.conftest import Agency, sample_files


@pytest.fixture
def snapshot(agency: Agency) -> Snapshot:
    dataset = agency.dataset("Paths", files=sample_files())
    target = agency.local_location("Backups on disk")
    run = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "succeeded", done.error
    return Snapshot.objects.get(run=run)


def _restore(agency: Agency, snapshot: Snapshot, **body: Any) -> Any:
    api = APIClient()
    api.force_authenticate(agency.admin)
    return api.post(f"/api/v1/snapshots/{snapshot.public_id}/restore/", body, format="json")


@pytest.mark.parametrize(
    "destination",
    ["../escape", "restores/../../escape", "/etc/cron.d", "nul\x00byte", "a/" * 600],
    ids=["dotdot", "nested-dotdot", "absolute", "nul", "too-long"],
)
def test_a_restore_destination_that_leaves_its_location_is_a_400(
    agency: Agency, snapshot: Snapshot, destination: str
) -> None:
    response = _restore(agency, snapshot, destination_path=destination)
    assert response.status_code == 400, response.content
    assert "destination_path" in response.json()["fields"]
    assert not RestoreRun.objects.exists()


@pytest.mark.parametrize(
    "prefix", ["../", "data/../../", "data\x00"], ids=["dotdot", "nested-dotdot", "nul"]
)
def test_a_restore_filter_that_climbs_out_is_a_400(
    agency: Agency, snapshot: Snapshot, prefix: str
) -> None:
    response = _restore(agency, snapshot, path_prefix=prefix)
    assert response.status_code == 400, response.content
    assert "path_prefix" in response.json()["fields"]
    assert not RestoreRun.objects.exists()


def test_a_valid_restore_request_is_accepted(agency: Agency, snapshot: Snapshot) -> None:
    """The same endpoint with a sane body, so the refusals above are about the paths."""
    response = _restore(
        agency, snapshot, destination_path="datasets/restores/ok", path_prefix="data"
    )
    assert response.status_code in (201, 202), response.content
    assert RestoreRun.objects.count() == 1


def test_odd_keys_in_a_primary_bucket_never_land_outside_the_restore(
    agency: Agency, tmp_path: Path
) -> None:
    primary = agency.s3_location("Primary bucket", prefix="live")
    store = agency.raw_store(primary.bucket)
    dataset = agency.dataset("Odd keys", location=primary)
    base = f"live/{dataset.path}/"
    safe = {
        "normal.txt": b"normal",
        unicodedata.normalize("NFC", "café.txt"): b"composed",
        unicodedata.normalize("NFD", "café.txt"): b"decomposed",
        "ctrl\x01char.txt": b"control character",
    }
    unsafe = {
        "a/../../../escape.txt": b"escape",
        "/absolute.txt": b"absolute",
        "double//slash.txt": b"double slash",
        "./dot.txt": b"dot",
    }
    for key, value in {**safe, **unsafe}.items():
        store.put(base + key, value)
    target = agency.local_location("Target dir")
    run = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "succeeded", done.error
    # Nothing is dropped silently: the run names each key it could not keep.
    done = BackupRun.objects.get(pk=run.pk)
    assert sorted(done.skipped_keys) == sorted(base + key for key in unsafe)
    assert done.files_seen == len(safe)

    snapshot = Snapshot.objects.get(run=run)
    destination = tmp_path / "restore"
    restored = agency.restore(snapshot, destination)
    assert restored == safe
    # Nothing was written beside the destination.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["restore"]


# --- symlinks planted in a local location ---

SHADOW = b"SHADOW-COPY-e83a1c: a file outside the location"


def _tree(root: Path) -> dict[str, bytes]:
    """Everything under `root`, links included (as their target), to compare before/after."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


def test_a_symlink_in_a_source_is_named_on_the_run_and_its_target_never_backed_up(
    agency: Agency, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow"
    (shadow / "inner").mkdir(parents=True)
    (shadow / "shadow.txt").write_bytes(SHADOW)
    (shadow / "inner" / "more.txt").write_bytes(SHADOW + b" (inner)")
    files = sample_files()
    dataset = agency.dataset("Linked", files=files)
    source = agency.source_dir(dataset)
    (source / "data" / "shadow.txt").symlink_to(shadow / "shadow.txt")
    (source / "elsewhere").symlink_to(shadow)
    target = agency.local_location("Backups on disk")

    run = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "succeeded", done.error
    done = BackupRun.objects.get(pk=run.pk)
    # Named, not silently dropped.
    assert sorted(done.skipped_keys) == [
        f"{dataset.path}/data/shadow.txt",
        f"{dataset.path}/elsewhere",
    ]
    assert done.files_seen == len(files)

    snapshot = Snapshot.objects.get(run=run)
    restored = agency.restore(snapshot, tmp_path / "restore")
    assert restored == files
    # The outside content is nowhere in the repository, in any form the target holds.
    for stored in _tree(Path(target.prefix)).values():
        assert SHADOW not in stored
    assert (shadow / "shadow.txt").read_bytes() == SHADOW


def test_a_source_directory_that_is_a_symlink_fails_the_run_by_name(
    agency: Agency, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "shadow.txt").write_bytes(SHADOW)
    dataset = agency.dataset("Swapped")
    source = agency.source_dir(dataset)
    source.parent.mkdir(parents=True, exist_ok=True)
    source.symlink_to(shadow)
    target = agency.local_location("Backups on disk")

    run = backup_run_create(dataset=dataset, trigger="manual", targets=[target], enqueue=False)
    done = backup_run_execute(str(run.public_id))
    assert done is not None
    assert done.status == "failed"
    assert dataset.path in done.error
    assert not Snapshot.objects.filter(run=run).exists()


@pytest.mark.parametrize(
    "planted", ["restores", "restores/planted/data"], ids=["destination", "inside-the-tree"]
)
def test_a_restore_into_a_tree_with_a_planted_directory_link_writes_nothing_outside(
    agency: Agency, snapshot: Snapshot, tmp_path: Path, planted: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_bytes(SHADOW)
    location = agency.local_location("Restores on disk")
    link = Path(location.prefix) / planted
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    # The restore tree lies in the client's folder on that location, as a tenant's must.
    clients_services.namespace_assign(
        actor=agency.actor, location=location, client=agency.client, path="restores"
    )

    restore = restore_request(
        actor=agency.actor,
        snapshot=snapshot,
        destination_location=location,
        destination_path="restores/planted",
        enqueue=False,
    )
    done = restore_run_execute(str(restore.public_id))
    assert isinstance(done, RestoreRun)
    assert done.status == RunStatus.FAILED
    assert "symbolic link; not followed" in done.error
    assert _tree(outside) == {"keep.txt": SHADOW}
