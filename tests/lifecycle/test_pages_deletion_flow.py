"""The deletion flow in pages: ask with the plan previewed, the requester told why they cannot
approve, refusals that keep the typed comment (a legal hold links to its release), the
engagement ended on a chosen day, and the dashboard after a deletion."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.urls import reverse
from django.utils import timezone

from clients import services as clients_services
from clients.models import Engagement
from lifecycle import services
from lifecycle.models import DeletionRequest, DeletionState
from tests.backups.conftest import agency, new_agency
from tests.factories import DeletionRequestFactory, UserFactory
from tests.lifecycle.pages_support import Desk, desk
from tests.s3server import s3_endpoint

__all__ = ["agency", "desk", "new_agency", "s3_endpoint"]


def _new_url(desk: Desk, **scope: Any) -> str:
    query = "&".join(
        f"{k}={v}" for k, v in {"client": desk.agency.client.public_id, **scope}.items()
    )
    return f"{reverse('deletion-request-new')}?{query}"


def _request(desk: Desk) -> DeletionRequest:
    return services.deletion_request_create(
        actor=desk.agency.actor,
        client=desk.agency.client,
        dataset=desk.dataset,
        reason="contract ended",
    )


def test_the_client_and_dataset_pages_link_to_a_deletion_request(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    client_page = page.get(reverse("client-detail", args=[desk.agency.client.public_id]))
    assert _new_url(desk).replace("&", "&amp;") in client_page.content.decode()
    dataset_page = page.get(reverse("dataset-detail", args=[desk.dataset.public_id]))
    assert 'id="request-dataset-deletion"' in dataset_page.content.decode()


def test_the_plan_is_previewed_before_asking_and_the_request_is_made(desk: Desk) -> None:
    page = desk.page(desk.lead)
    url = _new_url(desk, dataset=desk.dataset.public_id)
    preview = page.get(url)
    html = preview.content.decode()
    assert preview.status_code == 200
    assert "Plan preview" in html
    assert "Training data" in html
    assert desk.dataset.path in html  # the primary prefix the plan deletes
    assert "Also drop the client&#x27;s own primary databases" in html
    assert "only named in the plan" in html

    # The reason is required: the form says so and nothing is asked for.
    refused = page.post(url, {"reason": ""})
    assert refused.status_code == 400
    assert "This field is required" in refused.content.decode()
    assert not DeletionRequest.objects.exists()

    done = page.post(url, {"reason": "the contract ended"})
    made = DeletionRequest.objects.get()
    assert done.status_code == 302
    assert done["Location"] == reverse("deletion-request-page", args=[made.public_id])
    assert made.dataset == desk.dataset
    assert made.requested_by == desk.lead


def test_a_refused_request_keeps_the_typed_reason(desk: Desk) -> None:
    services.legal_hold_place(actor=desk.agency.actor, client=desk.agency.client, reason="audit")
    page = desk.page(desk.agency.admin)
    refused = page.post(_new_url(desk), {"reason": "my careful reason"})
    html = refused.content.decode()
    assert refused.status_code == 409
    assert "my careful reason" in html
    assert "A legal hold on client" in html
    assert not DeletionRequest.objects.exists()


def test_who_may_not_ask_or_see_is_refused(desk: Desk, new_agency: Any) -> None:
    member = desk.page(desk.member)
    assert member.get(_new_url(desk)).status_code == 404  # the member sees no grant of it
    stranger = new_agency("stranger")
    other = desk.page(stranger.admin)
    assert other.get(_new_url(desk)).status_code == 404
    made = _request(desk)
    assert other.get(reverse("deletion-request-page", args=[made.public_id])).status_code == 404


def test_the_requester_and_non_admins_are_told_why_they_cannot_approve(desk: Desk) -> None:
    made = _request(desk)
    url = reverse("deletion-request-page", args=[made.public_id])
    mine = desk.page(desk.agency.admin).get(url).content.decode()
    assert "You requested this deletion; another admin must approve it" in mine
    assert 'name="decision"' not in mine
    lead = desk.page(desk.lead).get(url).content.decode()
    assert "Only admins approve or reject deletions." in lead
    # The requester's own approval, sent anyway, is refused on the page with the comment kept.
    forced = desk.page(desk.agency.admin).post(url, {"decision": "approve", "comment": "I am sure"})
    assert forced.status_code == 403
    assert "I am sure" in forced.content.decode()
    assert "cannot approve it" in forced.content.decode()


def test_a_legal_hold_blocks_approval_keeps_the_comment_and_links_to_its_release(
    desk: Desk,
) -> None:
    made = _request(desk)
    hold = services.legal_hold_place(
        actor=desk.agency.actor, client=desk.agency.client, reason="litigation 42"
    )
    url = reverse("deletion-request-page", args=[made.public_id])
    page = desk.page(desk.admin2)
    shown = page.get(url).content.decode()
    assert "litigation 42" in shown  # the banner
    refused = page.post(url, {"decision": "approve", "comment": "checked with legal"})
    html = refused.content.decode()
    assert refused.status_code == 409
    assert "checked with legal</textarea>" in html
    assert f"{reverse('hold-list')}#hold-row-{hold.public_id}" in html
    assert 'data-confirm="' in html
    made.refresh_from_db()
    assert made.state == DeletionState.DRAFTED

    services.legal_hold_release(actor=desk.agency.actor, hold=hold, comment="settled")
    approved = page.post(url, {"decision": "approve", "comment": "checked with legal"})
    assert approved.status_code == 302
    made.refresh_from_db()
    assert made.state == DeletionState.APPROVED
    assert made.approvals.get().comment == "checked with legal"


def test_rejection_after_a_decision_keeps_the_comment(desk: Desk) -> None:
    made = _request(desk)
    url = reverse("deletion-request-page", args=[made.public_id])
    page = desk.page(desk.admin2)
    assert page.post(url, {"decision": "reject", "comment": "not yet"}).status_code == 302
    again = page.post(url, {"decision": "reject", "comment": "really not"})
    assert again.status_code == 409
    assert "really not</textarea>" in again.content.decode()
    assert "not awaiting approval" in again.content.decode()


def test_the_engagement_ends_on_a_chosen_day_validated_by_the_service(desk: Desk) -> None:
    engagement = clients_services.engagement_create(
        actor=desk.agency.actor,
        client=desk.agency.client,
        name="Build 2026",
        starts_on=dt.date(2026, 1, 1),
        deletion_due_days=30,
    )
    page = desk.page(desk.agency.admin)
    url = reverse("engagement-end-page", args=[engagement.public_id])
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    future = page.post(url, {"ended_on": tomorrow.isoformat()}, follow=True)
    assert "not in the future" in future.content.decode()
    before = page.post(url, {"ended_on": "2025-12-31"}, follow=True)
    assert "cannot end before it started" in before.content.decode()
    assert Engagement.objects.get(pk=engagement.pk).status == "active"
    done = page.post(url, {"ended_on": "2026-02-01"})
    assert done.status_code == 302
    ended = Engagement.objects.get(pk=engagement.pk)
    assert (ended.status, ended.ends_on) == ("ended", dt.date(2026, 2, 1))
    # The client page's button carries the date field and its confirmation.
    html = page.get(reverse("client-detail", args=[desk.agency.client.public_id])).content.decode()
    assert "Request deletion" in html


def test_the_dashboard_says_deleted_with_the_certificate_and_opens_every_reason(
    desk: Desk,
) -> None:
    gone = clients_services.client_create(actor=desk.agency.actor, name="Gone Client")
    request = DeletionRequestFactory(client=gone, reason="ended")
    services.deletion_certificate_issue(request)
    for n in range(5):
        desk.agency.dataset(f"Extra {n}")
    html = desk.page(desk.agency.admin).get(reverse("dashboard")).content.decode()
    row = html[html.index("Gone Client") :][:1200]
    assert "No datasets registered yet" not in row
    assert "Deleted on" in row
    assert reverse("deletion-certificate-page", args=[request.public_id]) in row
    details = html[html.index('<details class="more-reasons">') :]
    details = details[: details.index("</details>")]
    assert "<summary>and " in details
    assert ": no good backup yet" in details  # the reasons past the fourth, listed in full


def test_a_two_admin_setting_needs_both(desk: Desk) -> None:
    services.deletion_settings_update(actor=desk.agency.actor, approvals_required=2)
    made = _request(desk)
    third = UserFactory(username="agency-admin3")
    clients_services.membership_add(actor=desk.agency.actor, user=third, role="admin")
    url = reverse("deletion-request-page", args=[made.public_id])
    assert desk.page(desk.admin2).post(url, {"decision": "approve"}).status_code == 302
    told = desk.page(desk.admin2).get(url).content.decode()
    assert "You approved this deletion; another admin must approve it too." in told
    assert desk.page(third).post(url, {"decision": "approve"}).status_code == 302
    made.refresh_from_db()
    assert made.state == DeletionState.APPROVED


def test_dropping_databases_of_a_scope_without_one_is_refused_on_the_form(desk: Desk) -> None:
    page = desk.page(desk.agency.admin)
    refused = page.post(_new_url(desk), {"reason": "typed reason", "drop_primary_databases": "on"})
    html = refused.content.decode()
    assert refused.status_code == 400
    assert "Only a database dataset&#x27;s primary can be dropped." in html
    assert "typed reason" in html
    assert "Plan preview" in html  # the plain plan is still shown
    assert not DeletionRequest.objects.exists()
