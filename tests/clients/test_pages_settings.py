"""The settings pages: locations (credentials write-only, test connection), clients and
engagements, members and invitations, grants and grant requests, and one's own account."""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client as PageClient
from django.urls import reverse
from django.utils import timezone

from clients import services
from clients.models import (
    AccessGrant,
    Client,
    Engagement,
    GrantRequest,
    Invitation,
    Membership,
    StorageLocation,
    UserPreferences,
)
from tests.conftest import World
from tests.factories import LocationFactory
from tests.s3server import (
    TEST_ACCESS_KEY_ID,
    TEST_REGION,
    TEST_SECRET_ACCESS_KEY,
    s3_endpoint,
)

__all__ = ["s3_endpoint"]  # the fixture, used by name

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"  # a test value
ACCESS_KEY = "AKIAEXAMPLEPAGES01"


def _login(user: Any) -> PageClient:
    page = PageClient()
    page.force_login(user)
    return page


def _body(response: Any) -> str:
    return str(response.content.decode())


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- the hub ---


def test_the_hub_links_what_the_caller_may_use(world: World) -> None:
    admin = _body(_login(world.admin).get(reverse("settings-index")))
    for name in ("location-list", "member-list", "grant-list", "grant-request-list", "account"):
        assert f'href="{reverse(name)}"' in admin, name
    assert f'href="{reverse("client-new")}"' in admin
    lead = _body(_login(world.lead).get(reverse("settings-index")))
    assert f'href="{reverse("member-list")}"' not in lead
    assert f'href="{reverse("client-new")}"' not in lead
    assert f'href="{reverse("grant-list")}"' in lead
    assert f'href="{reverse("account")}"' in lead


# --- storage locations ---


def _s3_form(**changes: str) -> dict[str, str]:
    form = {
        "name": "Offsite",
        "kind": "s3",
        "provider": "wasabi",
        "endpoint_url": "",
        "region": "eu-central-1",
        "bucket": "agency-offsite",
        "prefix": "backups",
        "client": "",
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
    }
    form.update(changes)
    return form


def test_a_location_is_created_with_sealed_credentials_never_shown(world: World) -> None:
    admin = _login(world.admin)
    response = admin.post(reverse("location-new"), _s3_form(), follow=True)
    assert response.redirect_chain[-1][0] == reverse("location-list")
    body = _body(response)
    assert "Offsite" in body
    assert SECRET not in body
    assert ACCESS_KEY not in body
    location = StorageLocation.objects.get(name="Offsite")
    assert SECRET.encode() not in bytes(location.credentials_sealed)
    assert services.location_credentials(location) == {
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
    }
    row = re.search(r"<tr>\s*<td>Offsite</td>.*?</tr>", body, re.S)
    assert row is not None
    assert ">set<" in row.group(0)
    edit = _body(admin.get(reverse("location-edit", args=[location.public_id])))
    assert SECRET not in edit
    assert ACCESS_KEY not in edit
    assert "<strong>set</strong>" in edit


def test_a_refused_location_keeps_the_input_but_never_the_secret(world: World) -> None:
    admin = _login(world.admin)
    response = admin.post(reverse("location-new"), _s3_form(bucket="", name="Typed name"))
    assert response.status_code == 400
    body = _body(response)
    assert "An S3 location needs a bucket." in body
    assert 'value="Typed name"' in body
    assert SECRET not in body
    assert ACCESS_KEY not in body
    assert "never shown back: enter them again" in body
    assert not StorageLocation.objects.filter(name="Typed name").exists()
    # The credential shape is the service's rule: one half of a key pair is refused.
    half = admin.post(reverse("location-new"), _s3_form(secret_access_key=""))
    assert half.status_code == 400
    assert "access_key_id, secret_access_key" in _body(half)
    assert ACCESS_KEY not in _body(half)
    none = admin.post(reverse("location-new"), _s3_form(access_key_id="", secret_access_key=""))
    assert none.status_code == 400
    assert "its own access key" in _body(none)


def test_a_git_location_takes_a_private_key_that_is_never_rendered(world: World) -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjE\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    admin = _login(world.admin)
    form = {
        "name": "Git host",
        "kind": "git",
        "provider": "github",
        "endpoint_url": "not a url",
        "ssh_private_key": key,
    }
    bad = admin.post(reverse("location-new"), form)
    assert bad.status_code == 400
    assert "b3BlbnNzaC1rZXktdjE" not in _body(bad)
    form["endpoint_url"] = "https://github.com/agency/"
    assert admin.post(reverse("location-new"), form).status_code == 302
    location = StorageLocation.objects.get(name="Git host")
    assert services.location_credentials(location) == {"ssh_private_key": key}


def test_editing_keeps_replaces_or_removes_the_credentials(world: World) -> None:
    admin = _login(world.admin)
    admin.post(reverse("location-new"), _s3_form())
    location = StorageLocation.objects.get(name="Offsite")
    url = reverse("location-edit", args=[location.public_id])
    kept = _s3_form(access_key_id="", secret_access_key="", region="eu-west-2")
    assert admin.post(url, kept).status_code == 302
    location.refresh_from_db()
    assert location.region == "eu-west-2"
    assert services.location_credentials(location) == {
        "access_key_id": ACCESS_KEY,
        "secret_access_key": SECRET,
    }
    replaced = _s3_form(access_key_id="AKIANEW", secret_access_key="new-secret")
    assert admin.post(url, replaced).status_code == 302
    location.refresh_from_db()
    assert services.location_credentials(location) == {
        "access_key_id": "AKIANEW",
        "secret_access_key": "new-secret",
    }
    # Removing an S3 location's own credentials is refused (no ambient credentials here).
    removed = admin.post(url, {**kept, "remove_credentials": "on"})
    assert removed.status_code == 400
    assert "its own access key" in _body(removed)
    location.refresh_from_db()
    assert location.has_credentials


def test_only_owners_and_admins_write_locations(world: World, org_root: Path) -> None:
    for user in (world.lead, world.member, world.auditor):
        page = _login(user)
        assert page.get(reverse("location-new")).status_code == 403
        assert page.post(reverse("location-new"), _s3_form(name="Sneaky")).status_code == 403
        assert (
            page.get(reverse("location-edit", args=[world.location.public_id])).status_code == 403
        )
        listing = page.get(reverse("location-list"))
        assert listing.status_code == 200
        assert reverse("location-new") not in _body(listing)
    assert not StorageLocation.objects.filter(name="Sneaky").exists()
    # Another organization's location is 404, to read and to write.
    other = LocationFactory(organization=world.other_org, name="Their bucket")
    admin = _login(world.admin)
    assert admin.get(reverse("location-edit", args=[other.public_id])).status_code == 404
    assert admin.post(reverse("location-test", args=[other.public_id])).status_code == 404
    assert "Their bucket" not in _body(admin.get(reverse("location-list")))


def test_the_connection_test_of_a_local_directory(world: World, org_root: Path) -> None:
    directory = org_root / "backups"
    directory.mkdir()
    admin = _login(world.admin)
    form = {"name": "Disk", "kind": "local", "provider": "filesystem", "prefix": str(directory)}
    assert admin.post(reverse("location-new"), form).status_code == 302
    location = StorageLocation.objects.get(name="Disk")
    response = admin.post(reverse("location-test", args=[location.public_id]), follow=True)
    assert any("Disk: OK" in m and "writable" in m for m in _messages(response))
    directory.rmdir()
    gone = admin.post(reverse("location-test", args=[location.public_id]), follow=True)
    assert any("failed" in m and "does not exist" in m for m in _messages(gone))
    assert (
        _login(world.lead).post(reverse("location-test", args=[location.public_id])).status_code
        == 403
    )


def test_the_connection_test_of_a_bucket_goes_through_the_engine(
    world: World, s3_endpoint: str
) -> None:
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=TEST_REGION,
        aws_access_key_id=TEST_ACCESS_KEY_ID,
        aws_secret_access_key=TEST_SECRET_ACCESS_KEY,
    ).create_bucket(Bucket="pages-connection-test")
    admin = _login(world.admin)
    form = _s3_form(
        name="Moto",
        provider="minio",
        endpoint_url=s3_endpoint,
        region=TEST_REGION,
        bucket="pages-connection-test",
        access_key_id=TEST_ACCESS_KEY_ID,
        secret_access_key=TEST_SECRET_ACCESS_KEY,
    )
    assert admin.post(reverse("location-new"), form).status_code == 302
    location = StorageLocation.objects.get(name="Moto")
    ok = admin.post(reverse("location-test", args=[location.public_id]), follow=True)
    messages = _messages(ok)
    assert any("Moto: OK" in m and "pages-connection-test" in m for m in messages), messages
    assert TEST_SECRET_ACCESS_KEY not in _body(ok)
    missing = _s3_form(name="Nowhere", endpoint_url=s3_endpoint, bucket="no-such-bucket-here")
    admin.post(reverse("location-new"), missing)
    nowhere = StorageLocation.objects.get(name="Nowhere")
    failed = admin.post(reverse("location-test", args=[nowhere.public_id]), follow=True)
    assert any("does not exist" in m for m in _messages(failed)), _messages(failed)


def test_the_connection_test_follows_the_egress_policy(world: World, settings: Any) -> None:
    location = LocationFactory(
        organization=world.org, name="Internal", endpoint_url="http://127.0.0.1:9"
    )
    services.location_update(
        actor=world.actor(world.owner),
        location=location,
        credentials={"access_key_id": "a", "secret_access_key": "b"},
    )
    settings.AGENCYOPS_EGRESS_ALLOW = []  # loopback is no longer the operator's exception
    response = _login(world.admin).post(
        reverse("location-test", args=[location.public_id]), follow=True
    )
    assert any("internal addresses" in m for m in _messages(response)), _messages(response)


# --- clients and engagements ---


def test_a_client_is_created_and_edited_in_pages(world: World) -> None:
    admin = _login(world.admin)
    bad = admin.post(
        reverse("client-new"), {"name": "Acme", "contact_email": "not-mail", "status": "active"}
    )
    assert bad.status_code == 400
    assert 'value="Acme"' in _body(bad)
    good = admin.post(
        reverse("client-new"),
        {
            "name": "Acme",
            "contact_email": "cto@acme.test",
            "status": "active",
            "dpa_reference": "DPA-7",
        },
    )
    client = Client.objects.get(name="Acme")
    assert good["Location"] == reverse("client-detail", args=[client.public_id])
    assert client.slug == "acme"
    detail = _body(admin.get(good["Location"]))
    assert reverse("client-edit", args=[client.public_id]) in detail
    assert reverse("engagement-new", args=[client.public_id]) in detail
    edit_url = reverse("client-edit", args=[client.public_id])
    assert 'value="cto@acme.test"' in _body(admin.get(edit_url))
    taken = admin.post(edit_url, {"name": "Acme", "slug": world.client.slug, "status": "active"})
    assert taken.status_code == 400
    assert (
        admin.post(
            edit_url, {"name": "Acme Ltd", "slug": "acme", "status": "offboarding"}
        ).status_code
        == 302
    )
    client.refresh_from_db()
    assert (client.name, client.status) == ("Acme Ltd", "offboarding")


def test_engagements_are_added_with_the_models_rules(world: World) -> None:
    admin = _login(world.admin)
    url = reverse("engagement-new", args=[world.client.public_id])
    form = {
        "name": "Redesign",
        "starts_on": "2026-05-01",
        "ends_on": "2026-04-01",
        "deletion_due_days": "30",
    }
    bad = admin.post(url, form)
    assert bad.status_code == 400
    assert "cannot end before it starts" in _body(bad)
    assert 'value="Redesign"' in _body(bad)
    form["ends_on"] = "2026-09-30"
    assert admin.post(url, form).status_code == 302
    assert Engagement.objects.filter(client=world.client, name="Redesign").exists()
    again = admin.post(url, form)  # the name is taken for this client
    assert again.status_code == 400


def test_leads_members_auditors_do_not_create_clients(world: World) -> None:
    for user in (world.lead, world.member, world.auditor):
        page = _login(user)
        assert page.get(reverse("client-new")).status_code == 403
        assert (
            page.post(reverse("client-new"), {"name": "Nope", "status": "active"}).status_code
            == 403
        )
        assert page.get(reverse("client-edit", args=[world.client.public_id])).status_code == 403
        engagement = reverse("engagement-new", args=[world.client.public_id])
        assert page.post(engagement, {"name": "Nope", "starts_on": "2026-01-01"}).status_code == 403
    assert not Client.objects.filter(name="Nope").exists()
    assert (
        _login(world.lead).get(reverse("client-edit", args=[world.client_b.public_id])).status_code
        == 404
    )
    admin = _login(world.admin)
    assert admin.get(reverse("client-edit", args=[world.other_client.public_id])).status_code == 404
    assert (
        admin.get(reverse("engagement-new", args=[world.other_client.public_id])).status_code == 404
    )
    dashboard = _body(admin.get(reverse("dashboard")))
    assert f'href="{reverse("client-new")}"' in dashboard
    assert f'href="{reverse("client-new")}"' not in _body(
        _login(world.lead).get(reverse("dashboard"))
    )


# --- members and invitations ---


def _invite(page: PageClient, email: str = "new.person@example.test", role: str = "lead") -> str:
    response = page.post(reverse("member-invite"), {"email": email, "role": role})
    assert response.status_code == 302, _body(response)
    link = re.search(r"http://testserver(/invitations/[^/\s]+/)", mail.outbox[-1].body)
    assert link is not None, mail.outbox[-1].body
    return link.group(1)


def test_members_and_invitations_are_listed_for_admins_and_auditors(world: World) -> None:
    for user in (world.owner, world.admin, world.auditor):
        body = _body(_login(user).get(reverse("member-list")))
        assert "lead" in body
        assert "Project lead" in body
        assert "other_admin" not in body
    for user in (world.lead, world.member):
        assert _login(user).get(reverse("member-list")).status_code == 403
        assert _login(user).get(reverse("member-invite")).status_code == 403
    assert _login(world.auditor).get(reverse("member-invite")).status_code == 403


def test_an_invitation_is_mailed_with_a_hashed_single_use_token(world: World) -> None:
    admin = _login(world.admin)
    bad = admin.post(reverse("member-invite"), {"email": "not an address", "role": "lead"})
    assert bad.status_code == 400
    assert 'value="not an address"' in _body(bad)
    path = _invite(admin)
    assert mail.outbox[-1].to == ["new.person@example.test"]
    token = path.split("/")[2]
    invitation = Invitation.objects.get(email="new.person@example.test")
    assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in invitation.token_hash
    assert invitation.expires_at - timezone.now() > timedelta(days=6)
    listing = _body(admin.get(reverse("member-list")))
    assert "new.person@example.test" in listing
    assert token not in listing
    # The invitee, not signed in, opens the link and sets a username and password.
    invitee = PageClient()
    opened = invitee.get(path)
    assert opened.status_code == 200
    assert "Join Org A" in _body(opened)
    weak = invitee.post(path, {"username": "newperson", "password": "password"})
    assert weak.status_code == 400
    assert 'value="newperson"' in _body(weak)
    assert "too common" in _body(weak)
    accepted = invitee.post(path, {"username": "newperson", "password": "a long passphrase 42"})
    assert accepted.status_code == 302
    assert accepted["Location"] == reverse("login")
    user = get_user_model().objects.get(username="newperson")
    assert user.email == "new.person@example.test"
    assert Membership.objects.get(user=user).role == "lead"
    assert invitee.login(username="newperson", password="a long passphrase 42")
    # Used once: the same link answers 410 to anyone, signed in or not, read or post.
    for page in (PageClient(), invitee):
        assert page.get(path).status_code == 410
        again = page.post(path, {"username": "second", "password": "a long passphrase 42"})
        assert again.status_code == 410
    assert not get_user_model().objects.filter(username="second").exists()


def test_unknown_expired_and_replaced_invitations_are_refused(world: World) -> None:
    admin = _login(world.admin)
    assert PageClient().get("/invitations/not-a-token/").status_code == 404
    first = _invite(admin, email="twice@example.test")
    second = _invite(admin, email="twice@example.test")
    replaced = PageClient().get(first)
    assert replaced.status_code == 410
    assert "replaced" in _body(replaced)
    Invitation.objects.filter(email="twice@example.test", revoked_at__isnull=True).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    expired = PageClient().post(second, {"username": "late", "password": "a long passphrase 42"})
    assert expired.status_code == 410
    assert "expired" in _body(expired)
    assert not get_user_model().objects.filter(username="late").exists()


def test_a_taken_username_is_refused_on_the_invitation_page(world: World) -> None:
    path = _invite(_login(world.admin))
    taken = PageClient().post(path, {"username": "Lead", "password": "a long passphrase 42"})
    assert taken.status_code == 400
    assert services.USERNAME_UNAVAILABLE in _body(taken)
    assert PageClient().get(path).status_code == 200  # not used up by the refusal


def test_only_owners_invite_owners(world: World) -> None:
    refused = _login(world.admin).post(
        reverse("member-invite"), {"email": "boss@example.test", "role": "owner"}
    )
    assert refused.status_code == 403
    assert "Only an owner" in _body(refused)
    assert mail.outbox == []
    _invite(_login(world.owner), email="boss@example.test", role="owner")


def test_roles_change_but_the_last_owner_stays(world: World) -> None:
    owner = _login(world.owner)
    own = Membership.objects.get(user=world.owner)
    demote = owner.post(
        reverse("member-role", args=[own.public_id]), {"role": "admin"}, follow=True
    )
    assert any("at least one owner" in m for m in _messages(demote))
    own.refresh_from_db()
    assert own.role == "owner"
    lead = Membership.objects.get(user=world.lead)
    owner.post(reverse("member-role", args=[lead.public_id]), {"role": "member"})
    lead.refresh_from_db()
    assert lead.role == "member"
    # An admin may not touch an owner; leads may not change roles; others' members are 404.
    touched = _login(world.admin).post(
        reverse("member-role", args=[own.public_id]), {"role": "member"}, follow=True
    )
    assert any("Only an owner" in m for m in _messages(touched))
    assert (
        _login(world.auditor)
        .post(reverse("member-role", args=[lead.public_id]), {"role": "lead"})
        .status_code
        == 403
    )
    other = Membership.objects.get(user=world.other_admin)
    assert (
        owner.post(reverse("member-role", args=[other.public_id]), {"role": "lead"}).status_code
        == 404
    )
    assert (
        owner.post(reverse("member-role", args=[lead.public_id]), {"role": "king"}).status_code
        == 400
    )
    other.refresh_from_db()
    assert other.role == "admin"


# --- grants and grant requests ---


def test_the_access_review_lists_grants_with_revoke_in_place(world: World) -> None:
    admin = _login(world.admin)
    body = _body(admin.get(reverse("grant-list")))
    assert "lead of A" in body
    assert "member of A" in body
    grant = AccessGrant.objects.get(grantee=world.lead)
    assert reverse("grant-revoke", args=[grant.public_id]) in body
    assert "data-confirm=" in body
    lead = _body(_login(world.lead).get(reverse("grant-list")))
    assert "lead of A" in lead
    assert "member of A" not in lead
    assert "Revoke" not in lead.split("<table", 1)[1]
    assert (
        _login(world.lead).post(reverse("grant-revoke", args=[grant.public_id])).status_code == 403
    )
    member_grant = AccessGrant.objects.get(grantee=world.member)
    assert (
        _login(world.lead).post(reverse("grant-revoke", args=[member_grant.public_id])).status_code
        == 404
    )
    revoked = admin.post(reverse("grant-revoke", args=[grant.public_id]), follow=True)
    assert any("Revoked" in m for m in _messages(revoked))
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert grant.revoked_by == world.admin
    assert "lead of A" not in _body(revoked)
    twice = admin.post(reverse("grant-revoke", args=[grant.public_id]), follow=True)
    assert any("already revoked" in m for m in _messages(twice))
    assert (
        _login(world.other_admin)
        .post(reverse("grant-revoke", args=[member_grant.public_id]))
        .status_code
        == 404
    )


def test_a_grant_is_made_in_the_page_with_the_services_rules(world: World) -> None:
    admin = _login(world.admin)
    assert _login(world.lead).get(reverse("grant-new")).status_code == 403
    form = {
        "grantee": world.member.username,
        "client": str(world.client_b.public_id),
        "dataset": "",
        "permission": "manage",
        "reason": "covering for the lead",
        "expires_at": (timezone.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M"),
    }
    refused = admin.post(reverse("grant-new"), form)
    assert refused.status_code == 400
    assert "Members can hold view or restore grants" in _body(refused)
    assert "covering for the lead" in _body(refused)
    form["expires_at"] = (timezone.now() - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    form["permission"] = "view"
    past = admin.post(reverse("grant-new"), form)
    assert past.status_code == 400
    assert "must be in the future" in _body(past)
    form["expires_at"] = (timezone.now() + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M")
    form["dataset"] = str(world.dataset.public_id)  # client A's, not client B's
    wrong = admin.post(reverse("grant-new"), form)
    assert wrong.status_code == 400
    assert "belongs to another client" in _body(wrong)
    form["dataset"] = str(world.dataset_b.public_id)
    assert admin.post(reverse("grant-new"), form).status_code == 302
    grant = AccessGrant.objects.get(grantee=world.member, dataset=world.dataset_b)
    assert grant.permission == "view"
    other = {**form, "client": str(world.other_client.public_id), "dataset": ""}
    assert admin.post(reverse("grant-new"), other).status_code == 400  # not a choice


def test_a_refused_decision_keeps_the_comment(world: World, settings: Any) -> None:
    ask = services.grant_request_create(
        actor=world.actor(world.ungranted_lead),
        client=world.client_b,
        permission="view",
        reason="long audit",
        days=30,
    )
    settings.AGENCYOPS_GRANT_MAX_DAYS = 10  # the operator lowered it since
    url = reverse("grant-request-decide", args=[ask.public_id])
    refused = _login(world.admin).post(url, {"decision": "approve", "comment": "typed words"})
    assert refused.status_code == 400
    assert 'value="typed words"' in _body(refused)
    assert "too long a grant" in _body(refused)
    ask.refresh_from_db()
    assert ask.status == "pending"


def test_grant_requests_are_approved_or_rejected_in_the_page(world: World) -> None:
    lead_actor = world.actor(world.ungranted_lead)
    ask = services.grant_request_create(
        actor=lead_actor, client=world.client_b, permission="view", reason="need it", days=3
    )
    ask2 = services.grant_request_create(
        actor=lead_actor, client=world.client, permission="restore", reason="also", days=3
    )
    admin = _login(world.admin)
    listing = _body(admin.get(reverse("grant-request-list")))
    assert "need it" in listing
    assert reverse("grant-request-decide", args=[ask.public_id]) in listing
    own = _body(_login(world.ungranted_lead).get(reverse("grant-request-list")))
    assert "need it" in own
    assert "Approve" not in own
    assert _body(_login(world.lead).get(reverse("grant-request-list"))).count("need it") == 0
    url = reverse("grant-request-decide", args=[ask.public_id])
    assert _login(world.ungranted_lead).post(url, {"decision": "approve"}).status_code == 403
    assert admin.post(url, {"decision": "maybe"}).status_code == 400
    approved = admin.post(url, {"decision": "approve", "comment": "ok for the audit"}, follow=True)
    assert any("approved" in m for m in _messages(approved))
    ask.refresh_from_db()
    assert ask.status == "approved"
    assert ask.decision_note == "ok for the audit"
    assert ask.grant is not None
    assert ask.grant.grantee == world.ungranted_lead
    again = admin.post(url, {"decision": "reject"})
    assert again.status_code == 409
    assert any("already approved" in m for m in _messages(again))
    admin.post(
        reverse("grant-request-decide", args=[ask2.public_id]),
        {"decision": "reject", "comment": "no"},
    )
    assert GrantRequest.objects.get(pk=ask2.pk).status == "rejected"
    foreign = reverse("grant-request-decide", args=[ask2.public_id])
    assert _login(world.other_admin).post(foreign, {"decision": "approve"}).status_code == 404


# --- one's own account ---


def test_the_time_zone_changes_how_dates_render(world: World) -> None:
    lead = _login(world.lead)
    assert " UTC" in _body(lead.get(reverse("grant-list")))
    bad = lead.post(reverse("account"), {"time_zone": "Mars/Olympus"})
    assert bad.status_code == 400
    assert lead.post(reverse("account"), {"time_zone": "Asia/Tokyo"}).status_code == 302
    assert UserPreferences.objects.get(user=world.lead).time_zone == "Asia/Tokyo"
    grant = AccessGrant.objects.get(grantee=world.lead)
    local = timezone.localtime(grant.expires_at, timezone=zoneinfo.ZoneInfo("Asia/Tokyo"))
    body = _body(lead.get(reverse("grant-list")))
    assert f"{local:%H:%M} JST" in body
    assert 'value="Asia/Tokyo" selected' in _body(lead.get(reverse("account")))
    # Only one's own: another user's pages stay in UTC.
    assert " UTC" in _body(_login(world.admin).get(reverse("grant-list")))


def test_every_user_changes_their_own_password(world: World) -> None:
    assert not world.member.is_staff
    member = _login(world.member)
    assert member.get(reverse("password-change")).status_code == 200
    wrong = member.post(
        reverse("password-change"),
        {"old_password": "nope", "new_password1": "x", "new_password2": "x"},
    )
    assert wrong.status_code == 200
    assert "incorrectly" in _body(wrong)
    done = member.post(
        reverse("password-change"),
        {
            "old_password": "correct horse battery staple",
            "new_password1": "another long passphrase 7",
            "new_password2": "another long passphrase 7",
        },
    )
    assert done["Location"] == reverse("password-change-done")
    assert member.get(done["Location"]).status_code == 200
    assert PageClient().login(username="member", password="another long passphrase 7")
    assert PageClient().get(reverse("password-change")).status_code == 302


@pytest.mark.parametrize("name", ["account", "settings-index", "grant-list", "location-list"])
def test_settings_pages_need_a_login(db: Any, name: str) -> None:
    response = PageClient().get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
