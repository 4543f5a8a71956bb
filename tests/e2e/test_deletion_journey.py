"""End engagement → request deletion (plan previewed) → refused self-approval, told why → a
legal hold blocks the second admin's approval (comment kept) → released → approved → a real
Celery worker deletes and verifies → the certificate's PDF and signed JSON downloaded and the
JSON verified → a procurement token issued and its holder opens the evidence page and PDF.
Screenshots are saved in var/test-artifacts/ (the evidence page as evidence.png)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clients import services as clients_services
from lifecycle import services
from lifecycle.models import DeletionRequest, DeletionState, LegalHold
from lifecycle.tasks import deletion_request_execute_task
from tests.backups.conftest import make_agency, sample_files
from tests.backups.integration.support import Cluster
from tests.e2e.conftest import WAIT_MS, log_in
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _confirm(page: Any, label: str) -> None:
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name=label).click()


def test_an_engagement_ends_and_its_data_is_deleted_certified_and_shown_to_procurement(
    live_server: Any,
    browser: Any,
    page: Any,
    cluster: Cluster,
    route_to_cluster: Any,
    artifacts: Path,
    s3_endpoint: str,
    tmp_path: Path,
) -> None:
    agency = make_agency(s3_endpoint, slug="journey")
    second = UserFactory(username="bea")
    clients_services.membership_add(actor=agency.actor, user=second, role="admin")
    engagement = clients_services.engagement_create(
        actor=agency.actor,
        client=agency.client,
        name="Model build 2026",
        starts_on=dt.date(2026, 1, 1),
        deletion_due_days=30,
    )
    dataset = agency.dataset("Interview audio", files=sample_files(), engagement=engagement)
    cluster.start_worker("worker")
    route_to_cluster(cluster, deletion_request_execute_task)
    base = live_server.url

    # Admin A ends the engagement on a chosen day, through the confirmation dialog.
    log_in(page, base, agency.admin.username)
    page.goto(f"{base}/clients/{agency.client.public_id}/")
    page.get_by_label("Ended on").fill("2026-11-30")
    page.get_by_role("button", name="End engagement").click()
    _confirm(page, "End engagement")
    expect(page.locator(".messages")).to_contain_text("Engagement Model build 2026 ended.")

    # …asks for the engagement's deletion with the plan previewed…
    page.get_by_role("link", name="Request deletion").last.click()
    expect(page.get_by_role("heading", name="Plan preview")).to_be_visible()
    expect(page.locator("#plan")).to_contain_text("Interview audio")
    page.get_by_label("Reason").fill("engagement ended, contract clause 12")
    page.get_by_role("button", name="Request deletion").click()
    expect(page.locator("#state")).to_have_text("Awaiting approval")
    request = DeletionRequest.objects.get(client=agency.client)
    # …and may not approve it: the page says why.
    expect(page.locator("#why-not")).to_contain_text(
        "You requested this deletion; another admin must approve it"
    )
    expect(page.get_by_role("button", name="Approve deletion")).to_have_count(0)
    page.screenshot(path=str(artifacts / "deletion-requested.png"), full_page=True)

    # Admin B places a legal hold first: approving is refused, the comment is kept.
    context_b = browser.new_context(viewport={"width": 1280, "height": 900})
    page_b = context_b.new_page()
    log_in(page_b, base, "bea")
    page_b.goto(f"{base}/settings/holds/new/?client={agency.client.public_id}")
    page_b.get_by_label("Reason").fill("litigation pending")
    page_b.get_by_role("button", name="Place hold").click()
    expect(page_b.locator(".messages")).to_contain_text("Legal hold placed")
    page_b.goto(f"{base}/deletions/{request.public_id}/")
    expect(page_b.locator(".hold-banner")).to_contain_text("litigation pending")
    page_b.get_by_label("Comment").fill("checked with the client")
    page_b.get_by_role("button", name="Approve deletion").click()
    _confirm(page_b, "Submit decision")
    expect(page_b.locator("#refusal")).to_contain_text("A legal hold on client")
    expect(page_b.get_by_label("Comment")).to_have_value("checked with the client")
    page_b.screenshot(path=str(artifacts / "deletion-blocked-by-hold.png"), full_page=True)

    # She releases it from the link, with a comment, then approves.
    page_b.locator("#release-hold-link").click()
    page_b.get_by_label("Why it is released").fill("case settled")
    page_b.get_by_role("button", name="Release").click()
    _confirm(page_b, "Release hold")
    expect(page_b.locator(".messages")).to_contain_text("released")
    assert not LegalHold.objects.active().exists()
    page_b.goto(f"{base}/deletions/{request.public_id}/")
    page_b.get_by_label("Comment").fill("checked with the client")
    page_b.get_by_role("button", name="Approve deletion").click()
    _confirm(page_b, "Submit decision")

    # The worker deletes and verifies; the page shows it and links the certificate.
    cluster.wait_for(
        lambda: DeletionRequest.objects.filter(
            pk=request.pk, state=DeletionState.VERIFIED, certificate__isnull=False
        ).first(),
        WAIT_MS / 1000,
        "the deletion to be verified",
    )
    page_b.reload()
    expect(page_b.locator("#state")).to_have_text("Deleted and verified")
    page_b.get_by_role("link", name="Certificate").click()
    expect(page_b.get_by_role("heading", level=1)).to_have_text("Certificate of deletion")
    expect(page_b.locator("#certificate-locations")).to_contain_text("Primary storage")
    page_b.screenshot(path=str(artifacts / "deletion-certificate.png"), full_page=True)
    with page_b.expect_download() as got_json:
        page_b.get_by_role("link", name="Download signed JSON").click()
    saved_json = tmp_path / "certificate.json"
    got_json.value.save_as(saved_json)
    key = services.signing_key_ensure(agency.org).public_key
    ok, why = services.certificate_verify(saved_json.read_bytes(), public_key=key)
    assert ok, why
    with page_b.expect_download() as got_pdf:
        page_b.get_by_role("link", name="Download PDF").click()
    saved_pdf = tmp_path / "certificate.pdf"
    got_pdf.value.save_as(saved_pdf)
    assert saved_pdf.read_bytes().startswith(b"%PDF")

    # The dashboard no longer says "no datasets yet" of the client.
    page.goto(f"{base}/")
    row = page.locator("#client-health tbody tr", has_text=agency.client.name)
    expect(row).to_contain_text("Deleted on")

    # A procurement token, shown once, opens the evidence page and its PDF for its holder.
    page_b.goto(f"{base}/settings/procurement-tokens/new/")
    page_b.get_by_label("Client").select_option(label=agency.client.name)
    page_b.get_by_label("Name").fill("ACME procurement")
    expires = timezone.localtime() + dt.timedelta(days=30)
    page_b.get_by_label("Expires").fill(expires.strftime("%Y-%m-%dT%H:%M"))
    page_b.get_by_role("button", name="Issue token").click()
    secret = page_b.locator("#token-secret").input_value()
    assert secret.startswith("aop_")
    context_b.close()

    holder_context = browser.new_context(viewport={"width": 1280, "height": 900})
    holder = holder_context.new_page()
    holder.goto(f"{base}/evidence/open/")
    holder.get_by_label("Procurement token").fill(secret)
    holder.get_by_role("button", name="Open evidence").click()
    expect(holder.get_by_role("heading", level=1)).to_contain_text("Evidence")
    assert re.search(rf"/clients/{agency.client.public_id}/evidence/$", holder.url)
    assert secret not in holder.url
    expect(holder.locator("#fig-datasets .tile-value")).to_have_text("1")
    expect(holder.locator("#evidence-inventory")).to_contain_text("Interview audio")
    holder.screenshot(path=str(artifacts / "evidence.png"), full_page=True)
    with holder.expect_download() as evidence_pdf:
        holder.get_by_role("link", name="Download PDF").click()
    saved = tmp_path / "evidence.pdf"
    evidence_pdf.value.save_as(saved)
    assert saved.read_bytes().startswith(b"%PDF")
    holder_context.close()
    assert dataset.pk
