"""A non-staff admin's assurance journey in a real browser: a policy with two ordered targets
made in the settings pages, a dataset's 3-2-1 panel and copy map, the alert centre with an
acknowledgement and its note, and a posture audit with its history. Screenshots are saved as
test artifacts (var/test-artifacts/), the copy map as copy-map.png."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from backups.models import (
    Alert,
    AlertKind,
    BackupPolicy,
    BackupRun,
    DataCopy,
    RunStatus,
    Snapshot,
    Trigger,
)
from backups.services import (
    backup_run_execute,
    backup_run_request,
    restore_default_path,
    restore_request,
    restore_run_execute,
)
from backups.services.alerts import alert_raise
from backups.services.assurance import protection_status
from backups.tasks import restore_run_task
from clients.models import Dataset
from tests.backups.conftest import make_agency, sample_files
from tests.e2e.conftest import log_in
from tests.lifecycle.deletion_support import versioned_bucket

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _back_up(actor: Any, dataset: Dataset) -> BackupRun:
    """Carry a backup out here, as the worker's task would on its final attempt."""
    run = backup_run_request(actor=actor, dataset=dataset, trigger=Trigger.MANUAL, enqueue=False)
    done = backup_run_execute(str(run.public_id), final_attempt=True)
    assert done is not None
    return done


def test_an_admin_walks_policies_copy_map_alerts_and_posture(
    live_server: Any,
    page: Any,
    artifacts: Path,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(restore_run_task, "delay", lambda *args, **kwargs: None)
    agency = make_agency(s3_endpoint, slug="assure")
    assert not agency.admin.is_staff  # an admin of the organization, not of the installation
    # Object Lock is chosen when a bucket is made: the offsite bucket has it (and versions).
    offsite = agency.s3_location(
        "Offsite bucket",
        bucket=versioned_bucket(agency, "offsite", object_lock=True),
        create_bucket=False,
    )
    disk = agency.local_location("Backup disk")
    dataset = agency.dataset("Survey data", files=sample_files(), rpo=timedelta(hours=12))
    base = live_server.url
    log_in(page, base, agency.admin.username)

    # 1. A policy with two ordered targets, through the settings pages.
    page.goto(base + "/settings/policies/")
    page.get_by_role("link", name="New policy").click()
    page.get_by_label("Name").fill("Nightly offsite then disk")
    page.get_by_label("Frequency").select_option("daily")
    page.get_by_label("Target 1", exact=True).select_option(
        label=f"{offsite.name} (MinIO, {offsite.region})"
    )
    page.get_by_label("Target 2", exact=True).select_option(label=f"{disk.name} (Local filesystem)")
    page.get_by_label("Object Lock mode of target 1").select_option("GOVERNANCE")
    page.get_by_label("Lock days of target 1").fill("7")
    page.get_by_role("button", name="Create policy").click()
    expect(page.locator(".messages")).to_contain_text("Policy “Nightly offsite then disk” created.")
    policy = BackupPolicy.objects.get(organization=agency.org, name="Nightly offsite then disk")
    row = page.locator(f'tr[data-policy="{policy.public_id}"]')
    expect(row.locator("ol.targets li").nth(0)).to_contain_text("Offsite bucket")
    expect(row.locator("ol.targets li").nth(0)).to_contain_text("Object Lock Governance, 7 d")
    expect(row.locator("ol.targets li").nth(1)).to_contain_text("Backup disk")
    expect(row).to_contain_text("1 d")  # the shortest RPO a daily policy meets
    page.screenshot(path=str(artifacts / "assurance-policies.png"), full_page=True)
    assert list(policy.policy_targets.values_list("location_id", flat=True)) == [
        offsite.pk,
        disk.pk,
    ]

    # 2. The dataset takes the policy on its page; a backup runs; the 3-2-1 panel says why.
    page.goto(f"{base}/datasets/{dataset.public_id}/")
    expect(page.locator("#rpo-warning")).to_contain_text("the RPO is 12 h")
    page.get_by_label("Policy", exact=True).select_option(label=policy.name)
    page.get_by_role("button", name="Save policy").click()
    expect(page.locator(".messages")).to_contain_text("Backup policy saved.")
    ran = _back_up(agency.actor, dataset)
    assert ran.status == RunStatus.SUCCEEDED, ran.error
    snapshot = Snapshot.objects.filter(dataset=dataset, location=offsite).first()
    assert snapshot is not None
    restore = restore_request(
        actor=agency.actor,
        snapshot=snapshot,
        destination_location=agency.primary,
        destination_path=restore_default_path(dataset, agency.primary),
        enqueue=False,
    )
    restored = restore_run_execute(str(restore.public_id))
    assert restored is not None
    assert restored.status == RunStatus.SUCCEEDED, restored.error
    page.reload()
    panel = page.locator("#protection-panel")
    for rule in protection_status(dataset).rules:
        cell = panel.locator(f'tr[data-rule="{rule.name}"]')
        expect(cell).to_have_attribute("data-met", "yes" if rule.met else "no")
        expect(cell).to_contain_text(rule.reason)
    expect(page.locator("#rpo-warning")).to_contain_text("only every 1 d")
    page.screenshot(path=str(artifacts / "assurance-dataset-panel.png"), full_page=True)

    # 3. The copy map: primary, both targets, the restored copy.
    page.get_by_role("link", name="Copy map: where every copy is").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Copy map of Survey data")
    svg = page.locator("svg#copy-map-svg")
    expect(svg).to_have_attribute("role", "img")
    for name in (
        "Primary storage",
        "Offsite bucket",
        "Backup disk",
        "Restored into a storage location",
    ):
        expect(svg).to_contain_text(name)
    expect(page.locator("#copy-places")).to_contain_text("Object Lock Governance, 7 d")
    expect(page.locator("#tracked-copies")).to_contain_text("Restored into a storage location")
    assert DataCopy.objects.filter(dataset=dataset).count() == 1
    page.screenshot(path=str(artifacts / "copy-map.png"), full_page=True)

    # 4. The alert centre: acknowledge with a note, and come back to it.
    alert = alert_raise(
        organization=agency.org,
        kind=AlertKind.RPO_MISSED,
        incident_key=f"rpo_missed:{dataset.public_id}",
        title="RPO missed: Survey data",
        message="The newest copy is older than the RPO of 12 h.",
        client=dataset.client,
        dataset=dataset,
    )
    page.goto(base + "/alerts/")
    alert_row = page.locator(f'tr[data-alert="{alert.public_id}"]')
    expect(alert_row).to_contain_text("RPO missed: Survey data")
    expect(alert_row.get_by_role("link", name="Survey data")).to_have_attribute(
        "href", f"/datasets/{dataset.public_id}/"
    )
    alert_row.get_by_label("Note").fill("Moving it to the continuous policy")
    alert_row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".messages")).to_contain_text("Acknowledged: RPO missed: Survey data")
    assert page.url.endswith("/alerts/")
    expect(page.locator(f'tr[data-alert="{alert.public_id}"]')).to_have_count(0)
    page.get_by_label("State").select_option("acknowledged")
    page.get_by_role("button", name="Show").click()
    acknowledged = page.locator(f'tr[data-alert="{alert.public_id}"]')
    expect(acknowledged).to_contain_text("Moving it to the continuous policy")
    expect(acknowledged).to_contain_text(agency.admin.username)
    page.screenshot(path=str(artifacts / "assurance-alerts.png"), full_page=True)
    assert Alert.objects.get(pk=alert.pk).state == "acknowledged"

    # 5. A posture audit of the offsite bucket, and its history.
    page.goto(f"{base}/locations/{offsite.public_id}/posture/")
    page.get_by_role("button", name="Audit now").click()
    expect(page.locator(".messages")).to_contain_text("Audit done.")
    history = page.locator("#posture-history tbody tr")
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("latest")
    page.get_by_role("button", name="Audit now").click()
    expect(page.locator("#posture-history tbody tr")).to_have_count(2)
    page.screenshot(path=str(artifacts / "assurance-posture.png"), full_page=True)
    assert (artifacts / "copy-map.png").stat().st_size > 0

    # 6. At 390 px wide no page of the journey scrolls sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (
        "/settings/policies/",
        "/settings/policies/new/",
        f"/settings/policies/{policy.public_id}/edit/",
        "/settings/prices/",
        "/settings/notifications/",
        "/alerts/?state=all",
        "/costs/",
        f"/datasets/{dataset.public_id}/",
        f"/datasets/{dataset.public_id}/copies/",
        f"/clients/{dataset.client.public_id}/",
        f"/locations/{offsite.public_id}/posture/",
    ):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        wide = page.evaluate(
            "[...document.querySelectorAll('main *')].filter(e => !e.closest('.table-scroll')"
            " && e.getBoundingClientRect().right > 391).slice(0, 6).map(e => e.tagName + '.'"
            " + e.className + '#' + e.id)"
        )
        assert width <= 390, (path, width, wide)
    page.goto(f"{base}/datasets/{dataset.public_id}/copies/")
    page.screenshot(path=str(artifacts / "copy-map-390.png"), full_page=True)
