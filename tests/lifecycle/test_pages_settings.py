"""The lifecycle settings pages: obligations (with their fulfilment), procurement tokens (the
secret shown once, stored hashed), the record of processing and the approvals required."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone

from clients.services import token_hash
from lifecycle import services
from lifecycle.models import (
    DeletionSettings,
    ProcessingRecord,
    ProcurementToken,
    RetentionObligation,
)
from tests.backups.conftest import agency, new_agency
from tests.factories import DeletionRequestFactory
from tests.lifecycle.pages_support import Desk, desk
from tests.s3server import s3_endpoint

__all__ = ["agency", "desk", "new_agency", "s3_endpoint"]


def _expiry(days: int) -> str:
    return (timezone.localtime() + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M")


# --- obligations ---


def test_an_obligation_is_recorded_and_listed_with_its_due_day(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    done = page.post(
        reverse("obligation-new"),
        {
            "client": str(desk.agency.client.public_id),
            "kind": "retain_until",
            "retain_until": "2027-03-31",
            "source": "regulation",
            "source_reference": "tax law §147",
        },
    )
    assert done.status_code == 302
    obligation = RetentionObligation.objects.get()
    assert obligation.due_on == dt.date(2027, 3, 31)
    html = page.get(reverse("obligation-list")).content.decode()
    assert "31 Mar 2027" in html
    assert "Retain until a date" in html  # the kind in words, never its code
    assert "retain_until<" not in html


def test_a_missing_field_the_kind_needs_keeps_the_input(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    refused = page.post(
        reverse("obligation-new"),
        {
            "client": str(desk.agency.client.public_id),
            "kind": "retain_for",
            "source": "contract",
            "source_reference": "clause 9.2",
        },
    )
    assert refused.status_code == 400
    html = refused.content.decode()
    assert "Give the number of years to retain." in html
    assert 'value="clause 9.2"' in html
    assert not RetentionObligation.objects.exists()


def test_a_fulfilled_obligation_links_its_certificate(desk: Desk) -> None:
    obligation = RetentionObligation.objects.create(
        organization=desk.agency.org,
        client=desk.agency.client,
        dataset=desk.dataset,
        kind="delete_after_engagement",
        days_after_end=0,
        source="contract",
        due_on=dt.date(2026, 1, 1),
    )
    assert obligation.pk
    request = DeletionRequestFactory(client=desk.agency.client, dataset=desk.dataset)
    services.deletion_certificate_issue(request)
    html = desk.page(desk.lead).get(reverse("obligation-list")).content.decode()
    assert "Fulfilled" in html
    assert reverse("deletion-certificate-page", args=[request.public_id]) in html


def test_only_admins_record_obligations(desk: Desk) -> None:
    assert desk.page(desk.lead).get(reverse("obligation-new")).status_code == 403


# --- procurement tokens ---


def test_a_token_is_shown_once_and_stored_hashed(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    issued = page.post(
        reverse("token-new"),
        {
            "client": str(desk.agency.client.public_id),
            "name": "ACME procurement",
            "expires_at": _expiry(30),
        },
    )
    assert issued.status_code == 200  # the answer itself, no redirect that could carry it
    assert issued["Cache-Control"] == "no-store"
    html = issued.content.decode()
    token = ProcurementToken.objects.get()
    start = html.index('id="token-secret" value="') + len('id="token-secret" value="')
    secret = html[start : html.index('"', start)]
    assert secret.startswith("aop_")
    assert token.token_hash == token_hash(secret)
    assert secret not in token.token_hash
    # Never again: not on the list, not on the form.
    listed = page.get(reverse("token-list")).content.decode()
    assert "ACME procurement" in listed
    assert secret not in listed
    assert secret not in page.get(reverse("token-new")).content.decode()


def test_a_bad_expiry_keeps_the_name(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    refused = page.post(
        reverse("token-new"),
        {
            "client": str(desk.agency.client.public_id),
            "name": "Kept name",
            "expires_at": _expiry(400),
        },
    )
    assert refused.status_code == 400
    assert "At most 366 days from now." in refused.content.decode()
    assert 'value="Kept name"' in refused.content.decode()
    assert not ProcurementToken.objects.exists()


def test_a_token_is_revoked(desk: Desk, new_agency: Any) -> None:
    token, _ = services.evidence_token_issue(
        actor=desk.agency.actor,
        client=desk.agency.client,
        name="to revoke",
        expires_at=timezone.now() + dt.timedelta(days=3),
    )
    other = desk.page(new_agency("stranger").admin)
    assert other.post(reverse("token-revoke", args=[token.public_id])).status_code == 404
    page = desk.page(desk.agency.admin)
    assert page.post(reverse("token-revoke", args=[token.public_id])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_by == desk.agency.admin
    assert "Revoked" in page.get(reverse("token-list")).content.decode()


def test_leads_see_no_tokens(desk: Desk) -> None:
    assert desk.page(desk.lead).get(reverse("token-list")).status_code == 403
    assert desk.page(desk.lead).get(reverse("token-new")).status_code == 403


# --- the record of processing and approvals required ---


def test_the_processing_record_is_saved_through_the_service(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    url = f"{reverse('processing-record')}?client={desk.agency.client.public_id}"
    refused = page.post(
        url,
        {
            "processor_dpo": "dpo@agency.test",
            "transfers": "US | Cloud Inc | pinky_promise | none",
        },
    )
    assert refused.status_code == 400
    assert "safeguard: one of" in refused.content.decode()
    assert "dpo@agency.test" in refused.content.decode()
    done = page.post(
        url,
        {
            "processor_dpo": "dpo@agency.test",
            "processing_categories": "storage of training data\nannotation",
            "transfers": "US | Cloud Inc | standard_contractual_clauses | SCC module 3",
        },
    )
    assert done.status_code == 302
    record = ProcessingRecord.objects.get(client=desk.agency.client)
    assert record.processing_categories == ["storage of training data", "annotation"]
    assert record.transfers[0]["safeguard"] == "standard_contractual_clauses"
    assert "annotation" in page.get(url).content.decode()
    assert desk.page(desk.lead).get(url).status_code == 403


def test_approvals_required_is_one_or_two(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    url = reverse("deletion-settings")
    assert "Now: 1 approver" in page.get(url).content.decode()
    assert page.post(url, {"approvals_required": "3"}).status_code == 400
    assert page.post(url, {"approvals_required": "2"}).status_code == 302
    assert DeletionSettings.objects.get(organization=desk.agency.org).approvals_required == 2
    assert desk.page(desk.lead).get(url).status_code == 403
