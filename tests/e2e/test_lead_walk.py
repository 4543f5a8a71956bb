"""A project lead's walk through the pages, in a real browser, with a real Celery worker:
log in, open the client, register a dataset, back it up and watch the progress bar reach done,
back it up again after a change, restore the first point in time and get the original files."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from backups.models import DefaultFor, RestoreRun, RunStatus, Snapshot
from backups.services import policy_update
from backups.tasks import backup_run_task, restore_run_task
from clients import services as clients_services
from clients.models import Dataset
from tests.backups.conftest import make_agency, read_files, sample_files, write_files
from tests.backups.integration.support import Cluster
from tests.e2e.conftest import WAIT_MS, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DATASET = "Survey answers 2026"
FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def _next_whole_second(moment: datetime) -> datetime:
    return datetime.fromtimestamp(math.ceil(moment.timestamp()), tz=moment.tzinfo)


def _wait_until_backed_up(page: Any, succeeded: int) -> None:
    """Wait on the page only: the progress bar's script polls the run and reloads the page once
    it is done; the reloaded page has no live bar left and the run's badge says Succeeded."""
    runs = page.locator("#runs tbody tr")
    expect(page.locator("#runs .run-status.succeeded")).to_have_count(succeeded, timeout=WAIT_MS)
    expect(page.locator("[data-progress-url]")).to_have_count(0, timeout=WAIT_MS)
    latest = runs.first
    expect(latest.locator(".run-status")).to_have_text("Succeeded")
    expect(latest.locator("progress")).to_have_attribute("value", "100")


def test_a_lead_registers_a_dataset_backs_it_up_and_restores_a_point_in_time(
    live_server: Any,
    cluster: Cluster,
    route_to_cluster: Any,
    page: Any,
    artifacts: Path,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    agency = make_agency(s3_endpoint, slug="walk")
    disk = agency.local_location("Backup disk")
    policy_update(actor=agency.actor, policy=agency.policy(DefaultFor.DAILY), targets=[disk])
    lead = UserFactory(username="lena")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    clients_services.grant_create(
        actor=agency.actor,
        grantee=lead,
        client=agency.client,
        permission="manage",  # manage includes restore
        reason="project lead",
    )
    # The client's own folder on the shared primary location: its datasets and restores go there.
    agency.client_folder(agency.primary, "walk-client")
    source = Path(agency.primary.prefix) / "walk-client" / "surveys" / "2026"
    original = sample_files()
    write_files(source, original)

    cluster.start_worker("worker")
    route_to_cluster(cluster, backup_run_task, restore_run_task)

    # Log in through the form; the dashboard lists the one client the lead holds a grant on.
    log_in(page, live_server.url, "lena")
    expect(page.get_by_role("heading", level=1)).to_have_text("Dashboard")
    page.get_by_role("link", name=agency.client.name).first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(agency.client.name)

    # Register the dataset through the form.
    page.get_by_role("link", name="Register dataset").click()
    page.get_by_label("Name").fill(DATASET)
    page.get_by_label("Kind").select_option(label="Raw client data")
    page.get_by_label("Classification").select_option(label="Confidential")
    page.get_by_label("Location").select_option(label="Primary storage")
    page.get_by_label("Path").fill("walk-client/surveys/2026")
    page.get_by_role("textbox", name="RPO").fill("24:00:00")
    page.get_by_label("RTO").fill("04:00:00")
    page.get_by_role("button", name="Register dataset").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(DATASET)
    dataset = Dataset.objects.get(client=agency.client, name=DATASET)
    assert page.url.endswith(f"/datasets/{dataset.public_id}/")
    assert dataset.registered_by_id == lead.pk

    # Back it up: the worker carries the run out, the bar goes to 100 %.
    page.get_by_role("button", name="Back up now").click()
    expect(page.locator(".messages")).to_contain_text("Backup started.")
    _wait_until_backed_up(page, succeeded=1)
    expect(page.locator("#snapshots tbody tr")).to_have_count(1)
    page.screenshot(path=str(artifacts / "lead-backup-done.png"), full_page=True)
    first = Snapshot.objects.get(dataset=dataset)
    assert first.location == disk

    # Change the data and back it up again: the point in time to restore is the first one.
    point_in_time = _next_whole_second(first.taken_at)
    assert timezone.now() > point_in_time, "the second snapshot must be taken after it"
    changed = {**original, "README.md": b"# rewritten after the first backup\n"}
    changed["added later.txt"] = b"not in the first snapshot"
    write_files(source, changed)
    page.get_by_role("button", name="Back up now").click()
    _wait_until_backed_up(page, succeeded=2)
    second = Snapshot.objects.exclude(pk=first.pk).get(dataset=dataset)
    assert second.taken_at > point_in_time

    # Restore the data as it was at the first snapshot, into a folder of the primary location.
    form = page.locator("#restore-form")
    form.get_by_label("Restore the data as it was at").fill(
        point_in_time.strftime("%Y-%m-%dT%H:%M:%S")
    )
    form.get_by_label("Restore into").select_option(label="Primary storage")
    form.get_by_label("Folder inside it").fill("walk-client/restored/first")
    form.get_by_role("button", name="Restore").click()
    expect(page.locator(".messages")).to_contain_text(
        re.compile(r"Restoring the snapshot of .* from Backup disk")
    )
    restore = cluster.wait_for(
        lambda: RestoreRun.objects.filter(dataset=dataset, status__in=FINISHED).first(),
        WAIT_MS / 1000,
        "the restore to finish",
    )
    page.reload()
    badge = page.locator("#restores tbody tr").first.locator(".badge")
    expect(badge).to_have_text("Succeeded")
    page.screenshot(path=str(artifacts / "lead-restore-done.png"), full_page=True)

    assert restore.status == RunStatus.SUCCEEDED, restore.error
    assert restore.snapshot_id == first.pk
    restored = read_files(Path(agency.primary.prefix) / "walk-client" / "restored" / "first")
    assert restored == original
    assert restore.requested_by_id == lead.pk
    assert restore.finished_at is not None
    assert restore.finished_at - restore.created_at < timedelta(seconds=WAIT_MS / 1000)
