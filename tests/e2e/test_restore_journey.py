"""Backup → browse → download → point-in-time restore, as a project lead in a real browser with
a real Celery worker: back a local directory up from its page, open the snapshot, download one
file and compare its bytes, change the source and back up again, then restore the data as of
the first snapshot into a new folder and find the older content there."""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from backups.models import CopyKind, DataCopy, DefaultFor, RestoreRun, RunStatus, Snapshot
from backups.services import policy_update
from backups.tasks import backup_run_task, restore_run_task
from clients import services as clients_services
from tests.backups.conftest import make_agency, read_files, sample_files, write_files
from tests.backups.integration.support import Cluster
from tests.e2e.conftest import WAIT_MS, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)


def _backed_up(page: Any, succeeded: int) -> None:
    """The progress bar's script reloads the page once the run is done."""
    expect(page.locator("#runs .run-status.succeeded")).to_have_count(succeeded, timeout=WAIT_MS)
    expect(page.locator("#runs [data-progress-url]")).to_have_count(0, timeout=WAIT_MS)


def test_a_lead_browses_downloads_and_restores_a_point_in_time(
    live_server: Any,
    cluster: Cluster,
    route_to_cluster: Any,
    page: Any,
    artifacts: Path,
    s3_endpoint: str,
) -> None:
    agency = make_agency(s3_endpoint, slug="journey")
    disk = agency.local_location("Backup disk")
    policy_update(actor=agency.actor, policy=agency.policy(DefaultFor.DAILY), targets=[disk])
    lead = UserFactory(username="rosa")
    clients_services.membership_add(actor=agency.actor, user=lead, role="lead")
    clients_services.grant_create(
        actor=agency.actor,
        grantee=lead,
        client=agency.client,
        permission="manage",  # manage includes restore
        reason="project lead",
    )
    original = sample_files()
    dataset = agency.dataset("Field recordings", files=original)
    source = agency.source_dir(dataset)

    cluster.start_worker("worker")
    route_to_cluster(cluster, backup_run_task, restore_run_task)

    log_in(page, live_server.url, "rosa")
    page.goto(f"{live_server.url}/datasets/{dataset.public_id}/")
    page.get_by_role("button", name="Back up now").click()
    _backed_up(page, succeeded=1)
    first = Snapshot.objects.get(dataset=dataset)

    # Browse the snapshot: the top folder, then one of its folders.
    page.locator("#snapshots .browse-snapshot").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Snapshot of")
    files = page.locator("#snapshot-files")
    expect(files.get_by_role("link", name="data/")).to_be_visible()
    expect(files).to_contain_text("README.md")
    files.get_by_role("link", name="data/").click()
    expect(page.locator("#crumbs [aria-current=page]")).to_have_text("data")
    row = page.locator("#snapshot-files tr", has_text="train.csv")
    expect(row).to_contain_text("KB")
    page.screenshot(path=str(artifacts / "restore-journey-browse.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scroll
    page.screenshot(path=str(artifacts / "restore-journey-browse-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    # Download one file: the same bytes, recorded as a copy handed out.
    with page.expect_download() as waiting:
        row.get_by_role("link", name="Download").click()
    download = waiting.value
    assert download.suggested_filename == "train.csv"
    assert Path(download.path()).read_bytes() == original["data/train.csv"]
    handed_out = DataCopy.objects.get(dataset=dataset, kind=CopyKind.DOWNLOAD)
    assert handed_out.path == "data/train.csv"
    assert handed_out.made_by_id == lead.pk

    # Change the source and back it up again.
    point_in_time = datetime.fromtimestamp(
        math.ceil(first.taken_at.timestamp()), tz=first.taken_at.tzinfo
    )
    changed = {**original, "README.md": b"# rewritten after the first backup\n"}
    write_files(source, changed)
    page.goto(f"{live_server.url}/datasets/{dataset.public_id}/")
    page.get_by_role("button", name="Back up now").click()
    _backed_up(page, succeeded=2)
    second = Snapshot.objects.exclude(pk=first.pk).get(dataset=dataset)
    assert second.taken_at > point_in_time

    # Restore as of the first snapshot's time into a new folder.
    form = page.locator("#restore-form")
    form.get_by_label("Restore the data as it was at").fill(
        point_in_time.strftime("%Y-%m-%dT%H:%M:%S")  # the lead's zone is UTC here
    )
    form.get_by_label("Read from the copy on").select_option(label="Backup disk")
    form.get_by_label("Restore into").select_option(label="Primary storage")
    form.get_by_label("Folder inside it").fill("datasets/restored/first")
    expect(form.locator("#restore-roots")).to_contain_text("inside datasets/")
    # Ticking "overwrite" makes the form ask first (agencyops.js's dialog); cancelled, nothing
    # is sent. Unticked, the server would refuse a folder that holds files.
    overwrite = form.get_by_label("Overwrite files already in that folder")
    overwrite.check()
    form.get_by_role("button", name="Restore").click()
    dialog = page.locator("dialog.confirm")
    expect(dialog).to_contain_text(
        "This overwrites files in Primary storage datasets/restored/first"
    )
    page.screenshot(path=str(artifacts / "restore-journey-confirm.png"))
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert not RestoreRun.objects.filter(dataset=dataset).exists()
    overwrite.uncheck()
    form.get_by_role("button", name="Restore").click()
    expect(page.locator(".messages")).to_contain_text(
        re.compile(r"Restoring the snapshot of .* from Backup disk")
    )
    expect(page.locator("#restores progress").first).to_have_attribute(
        "aria-label", re.compile("Progress of the restore")
    )
    restore = cluster.wait_for(
        lambda: RestoreRun.objects.filter(dataset=dataset, status__in=FINISHED).first(),
        WAIT_MS / 1000,
        "the restore to finish",
    )
    page.reload()
    expect(page.locator("#restores tbody tr").first.locator(".badge")).to_have_text("Succeeded")
    page.screenshot(path=str(artifacts / "restore-journey-restored.png"), full_page=True)
    assert restore.status == RunStatus.SUCCEEDED, restore.error
    assert restore.snapshot_id == first.pk
    restored = read_files(Path(agency.primary.prefix) / "datasets" / "restored" / "first")
    assert restored == original
    assert restored["README.md"] != changed["README.md"]
