"""SaaS tools (issue 15): no connector pretends to be tested. An export is uploaded, streamed
into the dataset's inbox with a size limit, and becomes a snapshot like any other; until one
arrives the scheduled backup fails with a message that says an export is due, and alerts."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rest_framework.test import APIClient

from backups.models import Alert, BackupRun, RunStatus, Snapshot, Trigger
from backups.services import (
    backup_run_create,
    backup_run_execute,
    policy_update,
    restore_request,
    restore_run_execute,
)
from backups.services.assurance import protection_status
from backups.services.exports import export_inbox
from clients import services as clients_services
from clients.models import Dataset
from tests.backups.conftest import Agency, read_files


def _saas_dataset(agency: Agency) -> Dataset:
    slack = clients_services.location_create(
        actor=agency.actor,
        name="Client Slack",
        kind="saas",
        provider="slack",
        endpoint_url="https://client.slack.com",
        client=agency.client,
    )
    dataset = clients_services.dataset_register(
        actor=agency.actor,
        client=agency.client,
        name="Slack workspace",
        kind="communications_archive",
        location=slack,
        path="workspace-export",
    )
    target = agency.s3_location("Exports target")
    assert dataset.protection.policy is not None
    policy_update(actor=agency.actor, policy=dataset.protection.policy, targets=[target])
    return dataset


def _api(agency: Agency) -> APIClient:
    api = APIClient()
    api.force_authenticate(agency.admin)
    return api


def _upload(api: APIClient, dataset: Dataset, name: str, content: bytes) -> Any:
    handle = io.BytesIO(content)
    handle.name = name
    return api.post(
        f"/api/v1/datasets/{dataset.public_id}/exports/", {"file": handle}, format="multipart"
    )


def test_without_an_export_the_backup_fails_saying_exports_are_manual_and_alerts(
    agency: Agency,
) -> None:
    dataset = _saas_dataset(agency)
    target = dataset.protection.policy.policy_targets.get().location  # type: ignore[union-attr]
    run = backup_run_create(
        dataset=dataset, trigger=Trigger.SCHEDULE, targets=[target], enqueue=False
    )
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    assert done.status == RunStatus.FAILED
    assert "No export of Slack workspace has arrived" in done.error
    assert "manual" in done.error
    assert not Snapshot.objects.filter(dataset=dataset).exists()
    assert Alert.objects.filter(dataset=dataset, resolved_at__isnull=True).exists()
    # Unprotected in 3-2-1 until an export arrives: one copy (the tool's own), no recovery point.
    status = protection_status(dataset)
    assert status.met is False
    assert status.copies <= 1
    assert status.rpo_met is False


def test_an_uploaded_export_becomes_a_restorable_snapshot_and_leaves_the_inbox(
    agency: Agency, tmp_path: Path
) -> None:
    dataset = _saas_dataset(agency)
    content = b'{"channels": ["general"], "messages": 3}\n' * 1000
    response = _upload(_api(agency), dataset, "../../slack export 2026-12.zip", content)
    assert response.status_code == 202, response.content
    run = BackupRun.objects.get(public_id=response.json()["id"])
    assert run.trigger == Trigger.EXPORT
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    assert done.status == RunStatus.SUCCEEDED, done.error
    snapshot = Snapshot.objects.get(run=done)
    (export,) = snapshot.source_meta["exports"]
    assert export["bytes"] == len(content)
    assert export["file"].endswith("slack_export_2026-12.zip")  # a name, never a path
    assert snapshot.source_meta["connector"] == "none (manual export)"
    assert not export_inbox(dataset).exists()

    # Two exports in a row: the second waits for the first one's run, nothing is lost.
    api = _api(agency)
    one = _upload(api, dataset, "one.zip", b"one")
    two = _upload(api, dataset, "two.zip", b"two")
    assert one.status_code == two.status_code == 202
    assert one.json()["id"] == two.json()["id"]
    both = backup_run_execute(one.json()["id"], final_attempt=True)
    assert both is not None
    assert both.status == RunStatus.SUCCEEDED, both.error
    names = {e["file"][-7:] for e in Snapshot.objects.get(run=both).source_meta["exports"]}
    assert names == {"one.zip", "two.zip"}

    restored = tmp_path / "restored"
    restore = restore_request(
        actor=None, snapshot=snapshot, destination_path=str(restored), enqueue=False
    )
    finished = restore_run_execute(str(restore.public_id))
    assert finished is not None
    assert finished.status == RunStatus.SUCCEEDED, finished.error
    assert read_files(restored)[export["file"]] == content


def test_an_export_over_the_limit_is_refused_while_it_streams_and_leaves_nothing(
    agency: Agency, settings: Any
) -> None:
    settings.AGENCYOPS_EXPORT_MAX_BYTES = 64 * 1024
    dataset = _saas_dataset(agency)
    response = _upload(_api(agency), dataset, "big.zip", b"x" * (256 * 1024))
    assert response.status_code == 400, response.content
    assert "larger than the limit" in response.content.decode()
    assert "file" in response.json()["fields"]
    assert not BackupRun.objects.filter(dataset=dataset).exists()
    inbox = export_inbox(dataset)
    assert not inbox.exists() or not any(inbox.iterdir())


def test_exports_are_only_for_saas_datasets(agency: Agency) -> None:
    files = agency.dataset("Files", files={"a.txt": b"a"})
    response = _upload(_api(agency), files, "x.zip", b"x")
    assert response.status_code == 400
    assert "not a SaaS tool" in response.content.decode()


def test_a_lead_uploads_an_export_on_the_dataset_page(agency: Agency, settings: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client as PageClient

    dataset = _saas_dataset(agency)
    pages = PageClient()
    pages.force_login(agency.admin)
    page = pages.get(f"/datasets/{dataset.public_id}/")
    assert page.status_code == 200
    assert "Exports of Slack are manual" in page.content.decode()
    done = pages.post(
        f"/datasets/{dataset.public_id}/exports/",
        {"file": SimpleUploadedFile("slack.zip", b"PK\x03\x04 export")},
        follow=True,
    )
    assert done.status_code == 200
    assert "Export received" in done.content.decode()
    assert BackupRun.objects.filter(dataset=dataset, trigger=Trigger.EXPORT).count() == 1

    settings.AGENCYOPS_EXPORT_MAX_BYTES = 1024
    refused = pages.post(
        f"/datasets/{dataset.public_id}/exports/",
        {"file": SimpleUploadedFile("big.zip", b"x" * 8192)},
        follow=True,
    )
    assert refused.status_code == 200
    assert "larger than the limit" in refused.content.decode()
    assert BackupRun.objects.filter(dataset=dataset, trigger=Trigger.EXPORT).count() == 1


def test_a_deletion_removes_exports_still_waiting_for_their_backup(agency: Agency) -> None:
    from django.contrib.auth import get_user_model

    from kernel.tenancy import actor_for_user
    from lifecycle import services as lifecycle_services
    from lifecycle.models import DeletionState

    dataset = _saas_dataset(agency)
    response = _upload(_api(agency), dataset, "waiting.zip", b"client messages")
    assert response.status_code == 202
    run = backup_run_execute(response.json()["id"], final_attempt=True)
    assert run is not None
    assert run.status == RunStatus.SUCCEEDED
    # A second export arrives and its backup has not run when the engagement's deletion does.
    (export_inbox(dataset)).mkdir(parents=True, exist_ok=True)
    (export_inbox(dataset) / "late-export.zip").write_bytes(b"more client messages")
    request = lifecycle_services.deletion_request_create(
        actor=agency.actor, client=agency.client, dataset=dataset, reason="contract ended"
    )
    owner = get_user_model().objects.get(username=f"{agency.org.slug}-owner")
    owner_actor = actor_for_user(owner)
    assert owner_actor is not None
    lifecycle_services.deletion_request_approve(actor=owner_actor, request=request, enqueue=False)
    executed = lifecycle_services.deletion_request_execute(str(request.public_id))
    assert executed.state == DeletionState.VERIFIED, (executed.error, executed.verification)
    assert not export_inbox(dataset).exists()
    assert "export_inboxes_left" not in executed.verification
    (kept,) = executed.certificate.document["primaries_kept"]
    assert kept["workspace"] == "workspace-export"
    assert "not deleted by AgencyOps" in kept["note"]
