"""Issue #12, part 6, as the attack it stops: after a certified client deletion, the folders the
product's own restores had written still held the client's data, and neither the plan nor the
signed certificate mentioned them. Now every copy the product makes is tracked: restores into
locations are planned, deleted, re-listed and named; downloads are named as handed out; drill
scratch is named with its removal; the legal-hold and obligation lines say what each check found.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backups.models import CopyKind, DataCopy, RunStatus, Snapshot
from backups.services import (
    location_key,
    restore_request,
    restore_run_execute,
    snapshot_file_download,
)
from backups.services.drills import drill_start
from clients.models import Dataset, StorageLocation
from kernel.exceptions import Conflict
from kernel.tenancy import Actor, actor_for_user
from lifecycle import services
from lifecycle.models import DeletionRequest
from tests.lifecycle.deletion_support import Scene, all_versions, build_scene
from tests.s3server import s3_endpoint

__all__ = ["s3_endpoint"]


def _actor(user: Any) -> Actor:
    actor = actor_for_user(user)
    assert actor is not None
    return actor


@pytest.fixture
def scene(db: Any, tmp_path: Path, s3_endpoint: str) -> Scene:
    return build_scene(tmp_path, s3_endpoint)


def _restore(scene: Scene, dataset: Dataset, location: StorageLocation, path: str) -> None:
    snapshot = Snapshot.objects.filter(dataset=dataset).select_related("location").first()
    assert snapshot is not None
    restore = restore_request(
        actor=_actor(scene.lead),
        snapshot=snapshot,
        destination_location=location,
        destination_path=path,
        enqueue=False,
    )
    done = restore_run_execute(str(restore.public_id))
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error


def test_a_certified_deletion_reaches_every_copy_the_product_made(
    scene: Scene, django_capture_on_commit_callbacks: Any
) -> None:
    agency, dataset = scene.agency, scene.datasets[0]
    work_disk = agency.local_location("Work disk")
    agency.client_folder(work_disk, "datasets")
    # Restores into the client's folders: on the primary bucket and on a local disk.
    _restore(scene, dataset, scene.primary, "datasets/restores/one")
    _restore(scene, dataset, work_disk, "datasets/restores/two")
    restored_one = location_key(scene.primary, "datasets/restores/one") + "/"
    assert all_versions(scene.endpoint, scene.primary.bucket, restored_one)
    work_dir = Path(work_disk.prefix) / "datasets" / "restores" / "two"
    assert any(work_dir.rglob("*.txt"))
    # A file handed out, and a drill (its scratch removed at once).
    snapshot = Snapshot.objects.filter(dataset=dataset).first()
    assert snapshot is not None
    downloaded = snapshot_file_download(
        actor=_actor(scene.lead), snapshot=snapshot, path="notes.txt"
    )
    downloaded.cleanup()
    started = drill_start(actor=agency.actor, dataset=dataset, enqueue=False)
    drill = restore_run_execute(str(started.public_id))
    assert drill is not None
    assert drill.status == RunStatus.SUCCEEDED, drill.error
    # A hold placed and released before the request: every check finds it, released.
    hold = services.legal_hold_place(actor=agency.actor, client=agency.client, reason="inquiry")
    services.legal_hold_release(actor=agency.actor, hold=hold)

    request = services.deletion_request_create(
        actor=agency.actor, client=agency.client, dataset=dataset, reason="contract ended"
    )
    restored = [e for e in request.plan["locations"] if e["role"] == "restored"]
    assert {(e["location"]["name"], e["prefix"]) for e in restored} == {
        (scene.primary.name, restored_one),
        (work_disk.name, "datasets/restores/two/"),
    }
    assert all(e["versions"] > 0 for e in restored)
    assert sorted(c["kind"] for c in request.plan["copies"]) == [
        "download",
        "drill",
        "restore",
        "restore",
    ]

    # A restore made after drafting and before execution is not forgotten.
    _restore(scene, dataset, work_disk, "datasets/restores/late")
    services.deletion_request_approve(actor=_actor(scene.admin2), request=request, enqueue=False)
    with django_capture_on_commit_callbacks(execute=True):
        done = services.deletion_request_execute(str(request.public_id))
    assert done.state == "verified", (done.error, done.verification)

    assert all_versions(scene.endpoint, scene.primary.bucket, restored_one) == []
    for folder in ("two", "late"):
        leftover = Path(work_disk.prefix) / "datasets" / "restores" / folder
        assert not leftover.exists() or not any(p.is_file() for p in leftover.rglob("*"))
    assert not DataCopy.objects.filter(
        dataset=dataset, kind=CopyKind.RESTORE, removed_at__isnull=True
    ).exists()

    certificate = DeletionRequest.objects.get(pk=request.pk).certificate
    doc = certificate.document
    prefixes = {loc["prefix"] for loc in doc["locations"] if loc["role"] == "restored"}
    assert prefixes == {restored_one, "datasets/restores/two/", "datasets/restores/late/"}
    copies = doc["copies"]
    assert len(copies["restored_into_locations"]) == 3
    assert all(
        c["removal"].startswith("deleted by deletion request")
        for c in copies["restored_into_locations"]
    )
    (handed_out,) = copies["handed_out"]
    assert handed_out["kind"] == "download"
    assert handed_out["path"] == "notes.txt"
    assert handed_out["sha256"] == downloaded.sha256
    assert handed_out["made_by"] == scene.lead.username
    (scratch,) = copies["drill_scratch"]
    assert scratch["removal"] == "scratch directory removed by the drill"
    steps = [check["step"] for check in doc["checks"]["made"]]
    assert steps == ["drafting a deletion", "approving a deletion", "executing a deletion"]
    for check in doc["checks"]["made"]:
        assert [(h["id"], h["state"]) for h in check["legal_holds"]] == [
            (str(hold.public_id), "released")
        ]
    assert services.certificate_verify(
        services.certificate_file_bytes(certificate), public_key=certificate.public_key
    )[0]


def test_no_new_copy_is_made_of_a_dataset_pending_deletion(scene: Scene) -> None:
    dataset = scene.datasets[0]
    snapshot = Snapshot.objects.filter(dataset=dataset).first()
    assert snapshot is not None
    Dataset.objects.filter(pk=dataset.pk).update(lifecycle_state="deletion_pending")
    snapshot.refresh_from_db()
    with pytest.raises(Conflict):
        restore_request(
            actor=_actor(scene.lead),
            snapshot=snapshot,
            destination_location=scene.primary,
            destination_path="datasets/restores/x",
            enqueue=False,
        )
    with pytest.raises(Conflict):
        snapshot_file_download(actor=_actor(scene.lead), snapshot=snapshot, path="notes.txt")
