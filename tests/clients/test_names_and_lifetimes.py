"""Attacks on lifetimes and names: a token or grant that never expires, usernames that probe
other organizations, spreadsheet formulas, case twins and look-alikes."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.response import Response

from clients import services
from clients.models import AccessGrant, ApiToken, GrantRequest, Membership
from kernel.exceptions import ValidationFailed
from kernel.tenancy import Actor
from tests.conftest import World
from tests.factories import UserFactory

User = get_user_model()
_SAVEPOINT = re.compile(r'SAVEPOINT "[^"]+"')
UNAVAILABLE = {
    "detail": "This username is not available; choose another.",
    "code": "invalid",
    "fields": {"username": ["This username is not available; choose another."]},
}


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Time stands still, so "exactly the maximum" is exact."""
    moment = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: moment)
    return moment


def _call(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- personal tokens ---


def _token(api: Any, expires_at: datetime | str) -> Response:
    value = expires_at if isinstance(expires_at, str) else expires_at.isoformat()
    response: Response = api.post(
        "/api/v1/tokens/", {"name": "ci", "expires_at": value}, format="json"
    )
    return response


def test_a_token_expiring_in_2999_is_refused(world: World, as_user: Any) -> None:
    response = _token(as_user(world.owner), "2999-01-01T00:00:00Z")
    assert response.status_code == 400
    assert response.json()["fields"] == {"expires_at": ["At most 366 days from now."]}
    assert not ApiToken.objects.exists()


def test_a_token_one_day_past_the_maximum_is_refused_and_the_maximum_passes(
    world: World, as_user: Any, frozen: datetime
) -> None:
    api = as_user(world.owner)
    too_long = _token(api, frozen + timedelta(days=367))
    assert too_long.status_code == 400
    assert too_long.json()["fields"] == {"expires_at": ["At most 366 days from now."]}
    a_moment_too_long = _token(api, frozen + timedelta(days=366, microseconds=1))
    assert a_moment_too_long.status_code == 400
    assert not ApiToken.objects.exists()
    exactly = _token(api, frozen + timedelta(days=366))
    assert exactly.status_code == 201, exactly.content
    assert ApiToken.objects.get().expires_at == frozen + timedelta(days=366)


def test_the_setting_sets_the_token_limit(
    world: World, as_user: Any, settings: Any, frozen: datetime
) -> None:
    api = as_user(world.owner)
    settings.AGENCYOPS_TOKEN_MAX_DAYS = 30
    refused = _token(api, frozen + timedelta(days=31))
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"expires_at": ["At most 30 days from now."]}
    assert _token(api, frozen + timedelta(days=30)).status_code == 201
    # The default lifetime (365 days) is capped by the maximum too.
    default = api.post("/api/v1/tokens/", {"name": "default"}, format="json")
    assert default.status_code == 201
    assert ApiToken.objects.get(name="default").expires_at == frozen + timedelta(days=30)
    settings.AGENCYOPS_TOKEN_MAX_DAYS = 800
    assert _token(api, frozen + timedelta(days=700)).status_code == 201


def test_issue_token_beyond_the_maximum_fails_with_the_api_message(
    world: World, as_user: Any, frozen: datetime
) -> None:
    detail = _token(as_user(world.owner), "2999-01-01T00:00:00Z").json()["detail"]
    assert detail == "A personal token lives at most 366 days."
    with pytest.raises(CommandError) as refused:
        _call("issue_token", "owner", "--days", "400")
    assert str(refused.value) == detail
    # A count of days no datetime can hold is refused the same way, not a traceback.
    with pytest.raises(CommandError, match="at most 366 days"):
        _call("issue_token", "owner", "--days", "99999999999")
    with pytest.raises(CommandError, match="in the future"):
        _call("issue_token", "owner", "--days", "0")
    assert not ApiToken.objects.exists()
    assert _call("issue_token", "owner", "--days", "366").strip().splitlines()[-1].startswith("ao_")
    assert ApiToken.objects.get().expires_at == frozen + timedelta(days=366)


# --- grants and grant requests ---


def _grant(api: Any, world: World, expires_at: datetime | str) -> Response:
    value = expires_at if isinstance(expires_at, str) else expires_at.isoformat()
    response: Response = api.post(
        "/api/v1/grants/",
        {
            "grantee": world.ungranted_lead.username,
            "client": str(world.client_b.public_id),
            "permission": "view",
            "reason": "forever, please",
            "expires_at": value,
        },
        format="json",
    )
    return response


def test_a_grant_in_2999_or_a_day_past_the_maximum_is_refused(
    world: World, as_user: Any, frozen: datetime
) -> None:
    admin = as_user(world.admin)
    for expires_at in ("2999-01-01T00:00:00Z", frozen + timedelta(days=367)):
        response = _grant(admin, world, expires_at)
        assert response.status_code == 400
        assert response.json()["fields"] == {
            "expires_at": ["A grant lasts at most 366 days from now."]
        }
    assert not AccessGrant.objects.filter(grantee=world.ungranted_lead).exists()
    client_b = f"/api/v1/clients/{world.client_b.public_id}/"
    assert as_user(world.ungranted_lead).get(client_b).status_code == 404
    exactly = _grant(admin, world, frozen + timedelta(days=366))
    assert exactly.status_code == 201, exactly.content
    assert AccessGrant.objects.get(grantee=world.ungranted_lead).expires_at == frozen + timedelta(
        days=366
    )


def test_the_setting_sets_the_grant_limit(world: World, settings: Any, frozen: datetime) -> None:
    system = Actor.system(world.org)

    def grant(**extra: Any) -> AccessGrant:
        return services.grant_create(
            actor=system,
            grantee=world.ungranted_lead,
            client=world.client_b,
            permission="view",
            reason="r",
            **extra,
        )

    settings.AGENCYOPS_GRANT_MAX_DAYS = 10
    with pytest.raises(ValidationFailed) as refused:
        grant(expires_at=frozen + timedelta(days=11))
    assert refused.value.fields == {"expires_at": ["A grant lasts at most 10 days from now."]}
    # The default lifetime (90 days) is capped by the maximum too.
    assert grant().expires_at == frozen + timedelta(days=10)
    settings.AGENCYOPS_GRANT_MAX_DAYS = 800
    assert grant(expires_at=frozen + timedelta(days=700)).expires_at == frozen + timedelta(days=700)


def _ask(api: Any, world: World, days: int) -> Response:
    response: Response = api.post(
        "/api/v1/grant-requests/",
        {
            "client": str(world.client_b.public_id),
            "permission": "view",
            "reason": "a long project",
            "days": days,
        },
        format="json",
    )
    return response


def test_grant_request_days_follow_the_setting(world: World, as_user: Any, settings: Any) -> None:
    lead = as_user(world.ungranted_lead)
    for days in (367, 10**12):
        refused = _ask(lead, world, days)
        assert refused.status_code == 400
        assert refused.json()["fields"] == {"days": ["A grant lasts at most 366 days."]}
    assert not GrantRequest.objects.exists()
    assert _ask(lead, world, 366).status_code == 201
    # Above 366 once the operator allows it: neither the serializer nor the model keeps 366.
    settings.AGENCYOPS_GRANT_MAX_DAYS = 500
    assert _ask(lead, world, 500).status_code == 201
    settings.AGENCYOPS_GRANT_MAX_DAYS = 30
    assert _ask(lead, world, 31).json()["fields"] == {"days": ["A grant lasts at most 30 days."]}


def test_a_request_beyond_a_lowered_limit_is_not_approved(
    world: World, as_user: Any, settings: Any
) -> None:
    asked = _ask(as_user(world.ungranted_lead), world, 300)
    assert asked.status_code == 201
    settings.AGENCYOPS_GRANT_MAX_DAYS = 100
    approve = as_user(world.admin).post(f"/api/v1/grant-requests/{asked.json()['id']}/approve/")
    assert approve.status_code == 400
    assert approve.json()["fields"] == {"days": ["A grant lasts at most 100 days."]}
    assert GrantRequest.objects.get().status == "pending"
    assert not AccessGrant.objects.filter(grantee=world.ungranted_lead).exists()


# --- usernames ---


def _add(api: Any, username: str, **extra: Any) -> Response:
    response: Response = api.post(
        "/api/v1/members/", {"username": username, "role": "lead", **extra}, format="json"
    )
    return response


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("=cmd", "may not start with =, +, - or @"),
        ("+x", "may not start with =, +, - or @"),
        ("-x", "may not start with =, +, - or @"),
        ("@x", "may not start with =, +, - or @"),
        ("\uff4f\uff57\uff4e\uff45\uff52", "Use plain characters"),  # full-width "owner"
        ("jose\u0301", "Use plain characters"),  # decomposed: not NFKC
        ("\u0430dmin", "one script"),  # a Cyrillic "a", then Latin letters
        ("pay\u03c1al", "one script"),  # Greek rho among Latin letters
        ("a b", "Enter a valid username"),
        ("x;rm", "Enter a valid username"),
        ("x" * 151, "150 characters"),
    ],
)
def test_unsafe_usernames_are_refused(
    world: World, as_user: Any, username: str, message: str
) -> None:
    response = _add(as_user(world.admin), username)
    assert response.status_code == 400
    (field_message,) = response.json()["fields"]["username"]
    assert message in field_message
    assert User.objects.count() == 8  # the world's logins, nothing more


def test_a_case_twin_of_an_existing_login_is_unavailable(world: World, as_user: Any) -> None:
    admin = as_user(world.admin)
    for twin in ("Owner", "OWNER", "Other_Admin", "LEAD"):
        response = _add(admin, twin)
        assert (response.status_code, response.json()) == (400, UNAVAILABLE), twin
    assert not User.objects.filter(username__in=["Owner", "OWNER", "Other_Admin", "LEAD"]).exists()
    UserFactory(username="stra\u00dfe")
    response = _add(admin, "STRASSE")
    assert (response.status_code, response.json()) == (400, UNAVAILABLE)


@pytest.mark.parametrize(
    "username",
    [
        "ivan",
        "maria.k+ops@agency",
        "x_1-2",
        "jos\u00e9",  # é composed: NFKC
        "\u0438\u0432\u0430\u043d",  # all Cyrillic
        "\u03b1\u03b8\u03b7\u03bd\u03ac",  # all Greek
        "\u5c71\u7530\u305f\u308d\u3046",  # Han and Hiragana: one Japanese name
        "\ud55c\uad6d\u4eba",  # Hangul and Han
        "x" * 150,
    ],
)
def test_plain_usernames_of_one_script_are_accepted(
    world: World, as_user: Any, username: str
) -> None:
    response = _add(as_user(world.admin), username)
    assert response.status_code == 201, response.content
    assert Membership.objects.get(user__username=username).organization == world.org


def test_the_commands_apply_the_same_rules(world: World) -> None:
    with pytest.raises(CommandError, match="may not start with"):
        _call("create_organization", "Formula Inc", "--owner", "=cmd")
    with pytest.raises(CommandError, match="one script"):
        _call("add_member", "org-a", "\u0430dmin", "--role", "lead")
    with pytest.raises(CommandError, match="At most 150 characters"):
        _call("add_member", "org-a", "x" * 151, "--role", "lead")
    # The operator is told which login is in the way; nothing is created.
    with pytest.raises(CommandError, match="existing login 'owner'"):
        _call("add_member", "org-a", "Owner", "--role", "lead")
    with pytest.raises(CommandError, match="existing login 'other_admin'"):
        _call("create_organization", "Twin Inc", "--owner", "OTHER_ADMIN")
    assert User.objects.count() == 8


# --- probing other organizations through POST /api/v1/members/ ---


@pytest.fixture
def drifter(world: World) -> Any:
    """A login of no organization (its organization was removed, or the operator made it)."""
    return UserFactory(username="drifter")


def test_the_members_endpoint_answers_alike_wherever_the_name_exists(
    world: World, as_user: Any, drifter: Any
) -> None:
    admin = as_user(world.admin)
    memberships = list(Membership.objects.values_list("pk", "user_id", "organization_id", "role"))
    answers = {}
    for username in ("other_admin", "lead", "drifter", "Other_Admin", "DRIFTER"):
        for extra in ({}, {"password": "a long new password", "email": "x@example.com"}):
            response = _add(admin, username, **extra)
            answers[(username, bool(extra))] = (response.status_code, response.content)
    assert set(answers.values()) == {(400, _add(admin, "lead").content)}
    assert _add(admin, "lead").json() == UNAVAILABLE
    # Nobody was attached or changed: the drifter still belongs to no organization.
    assert list(Membership.objects.values_list("pk", "user_id", "organization_id", "role")) == (
        memberships
    )
    assert not Membership.objects.filter(user=drifter).exists()
    drifter.refresh_from_db()
    assert drifter.check_password("correct horse battery staple")  # the factory's, untouched
    # A new name still makes a new login, as before.
    created = _add(admin, "newcomer")
    assert created.status_code == 201
    assert Membership.objects.get(user__username="newcomer").role == "lead"


def test_refusing_a_taken_name_does_the_work_of_accepting_one(
    world: World, as_user: Any, drifter: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same queries whichever organization holds the name, and the password is hashed
    whether the name is free or taken: no path is measurably cheaper than another."""
    hashed: list[str] = []
    encode = MD5PasswordHasher.encode

    def counting(self: MD5PasswordHasher, password: str, salt: str) -> str:
        hashed.append(password)
        return encode(self, password, salt)

    monkeypatch.setattr(MD5PasswordHasher, "encode", counting)
    admin = as_user(world.admin)

    def attempt(username: str) -> tuple[list[str], list[str]]:
        hashed.clear()
        with CaptureQueriesContext(connection) as queries:
            _add(admin, username, password="a long new password")
        statements = [_SAVEPOINT.sub("SAVEPOINT s", q["sql"]) for q in queries.captured_queries]
        return statements, list(hashed)

    elsewhere, here, nowhere, twin = (
        attempt(name) for name in ("other_admin", "lead", "drifter", "Drifter")
    )
    assert elsewhere == here == nowhere == twin
    assert elsewhere[1] == ["a long new password"]
    _, hashed_for_new = attempt("newcomer")
    assert hashed_for_new == ["a long new password"]
    assert User.objects.get(username="newcomer").check_password("a long new password")


def test_the_operator_attaches_an_existing_login(world: World, drifter: Any) -> None:
    out = _call("add_member", "org-a", "drifter", "--role", "lead")
    assert "drifter is now lead of Org A" in out
    assert "Password" not in out
    assert Membership.objects.get(user=drifter).organization == world.org
