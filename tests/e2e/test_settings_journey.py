"""Onboarding in a real browser, as an admin who is not Django staff: a bucket location with its
credentials and a passing connection test, a client and an engagement, a member invited by
e-mail who sets their own password and signs in, and a grant that shows them the client. The
access review is saved as a screenshot (var/test-artifacts/)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core import mail
from playwright.sync_api import expect

from clients.models import AccessGrant, Membership, StorageLocation
from tests.e2e.conftest import log_in
from tests.factories import MembershipFactory, OrganizationFactory, UserFactory
from tests.s3server import TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

INVITEE_PASSWORD = "a long passphrase for pages 9"  # a test value


def test_a_non_staff_admin_sets_up_the_agency_in_pages(
    live_server: Any, page: Any, browser: Any, artifacts: Path, s3_endpoint: str
) -> None:
    organization = OrganizationFactory(name="Fjord Studio", slug="fjord")
    admin = UserFactory(username="ada")
    MembershipFactory(organization=organization, user=admin, role="admin")
    assert not admin.is_staff
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
    ).create_bucket(Bucket="fjord-offsite")
    base = live_server.url
    log_in(page, base, "ada")

    # A storage location, from the settings hub.
    page.goto(base + "/settings/")
    page.get_by_role("link", name="Storage locations").click()
    page.get_by_role("link", name="New location").click()
    page.locator("#id_name").fill("Offsite bucket")
    page.get_by_label("Kind").select_option("s3")
    page.get_by_label("Provider").select_option("minio")
    page.get_by_label("Endpoint URL").fill(s3_endpoint)
    page.get_by_label("Region").fill(TEST_REGION)
    page.get_by_label("Bucket").fill("fjord-offsite")
    page.get_by_label("Prefix").fill("backups")
    page.get_by_label("Access key id").fill(TEST_ACCESS_KEY_ID)
    page.get_by_label("Secret access key").fill(TEST_SECRET_ACCESS_KEY)
    page.get_by_role("button", name="Save location").click()
    expect(page.locator(".messages")).to_contain_text("Location “Offsite bucket” saved.")
    row = page.locator("#locations tbody tr", has_text="Offsite bucket")
    expect(row).to_contain_text("set")
    assert TEST_SECRET_ACCESS_KEY not in page.content()
    row.get_by_role("button", name="Test connection").click()
    expect(page.locator(".messages")).to_contain_text("Offsite bucket: OK.")
    expect(page.locator(".messages")).to_contain_text("fjord-offsite")
    page.screenshot(path=str(artifacts / "settings-locations.png"), full_page=True)
    assert StorageLocation.objects.get(name="Offsite bucket").has_credentials

    # A client, from the dashboard, and its engagement.
    page.goto(base + "/")
    page.get_by_role("link", name="New client").click()
    page.locator("#id_name").fill("Northwind Health")
    page.get_by_label("Contact email").fill("cto@northwind.test")
    page.get_by_role("button", name="Create client").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Northwind Health")
    page.get_by_role("link", name="New engagement").click()
    page.locator("#id_name").fill("Patient portal")
    page.get_by_label("Starts on").fill("2026-12-01")
    page.get_by_role("button", name="Create engagement").click()
    expect(page.locator("main table").first).to_contain_text("Patient portal")

    # An invitation by e-mail; the invitee sets a password and signs in.
    page.goto(base + "/settings/")
    page.get_by_role("link", name="Members and invitations").click()
    page.get_by_role("link", name="Invite a member").click()
    page.get_by_label("E-mail").fill("lin@fjord.test")
    page.get_by_label("Role").select_option("lead")
    page.get_by_role("button", name="Send invitation").click()
    expect(page.locator("#invitations")).to_contain_text("lin@fjord.test")
    assert len(mail.outbox) == 1
    found = re.search(r"https?://\S+/invitations/\S+/", mail.outbox[0].body)
    assert found is not None, mail.outbox[0].body
    invitee_context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        invitee = invitee_context.new_page()
        invitee.goto(found.group(0))
        expect(invitee.get_by_role("heading", level=1)).to_contain_text("Join Fjord Studio")
        invitee.get_by_label("Username").fill("lin")
        invitee.get_by_label("Password").fill(INVITEE_PASSWORD)
        invitee.get_by_role("button", name="Create my account").click()
        expect(invitee.locator(".messages")).to_contain_text("Your account is ready")
        invitee.get_by_label("Username").fill("lin")
        invitee.get_by_label("Password").fill(INVITEE_PASSWORD)
        invitee.get_by_role("button", name="Log in").click()
        invitee.wait_for_url(re.compile(r"/$"))
        expect(invitee.locator("#client-health")).not_to_contain_text("Northwind Health")
        assert Membership.objects.get(user__username="lin").role == "lead"

        # The admin grants the new lead the client; the lead's dashboard shows it.
        page.goto(base + "/settings/access/")
        page.get_by_role("link", name="Grant access").click()
        page.get_by_label("Member").select_option("lin")
        page.locator("#id_client").select_option(label="Northwind Health")
        page.get_by_label("Permission").select_option("manage")
        page.get_by_label("Reason").fill("Lead of the patient portal")
        page.get_by_role("button", name="Grant access").click()
        grant_row = page.locator("#grants tbody tr", has_text="lin")
        expect(grant_row).to_contain_text("Northwind Health")
        expect(grant_row.get_by_role("button", name="Revoke")).to_be_visible()
        assert AccessGrant.objects.get(grantee__username="lin").permission == "manage"
        page.screenshot(path=str(artifacts / "settings-access-review.png"), full_page=True)
        invitee.reload()
        expect(invitee.locator("#client-health")).to_contain_text("Northwind Health")
        # The one-time link is used up.
        invitee.goto(found.group(0))
        expect(invitee.get_by_role("heading", level=1)).to_contain_text("Invitation not valid")
    finally:
        invitee_context.close()

    # Every settings page fits a 390 px wide phone: no sideways scroll.
    page.set_viewport_size({"width": 390, "height": 844})
    location = StorageLocation.objects.get(name="Offsite bucket")
    for path in (
        "/settings/",
        "/settings/locations/",
        "/settings/locations/new/",
        f"/settings/locations/{location.public_id}/edit/",
        "/clients/new/",
        "/settings/members/",
        "/settings/members/invite/",
        "/settings/access/",
        "/settings/access/new/",
        "/settings/access/requests/",
        "/account/",
        "/account/password/",
    ):
        page.goto(base + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
