"""Management commands: organizations, members, tokens, and the idempotent demo."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from clients.models import AccessGrant, Client, Dataset, Membership, Organization, StorageLocation


def _call(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_organization_prints_password_once() -> None:
    out = _call("create_organization", "Blue Fin Labs", "--owner", "maria")
    assert "Blue Fin Labs (blue-fin-labs) created" in out
    password = out.strip().splitlines()[-1].split(": ")[-1]
    user = get_user_model().objects.get(username="maria")
    assert user.check_password(password)
    assert Membership.objects.get(user=user).role == "owner"
    with pytest.raises(CommandError, match="already belongs"):
        _call("create_organization", "Second", "--owner", "maria")


@pytest.mark.django_db
def test_add_member_and_issue_token_that_works() -> None:
    _call("create_organization", "Blue Fin Labs", "--owner", "maria")
    out = _call("add_member", "blue-fin-labs", "ivan", "--role", "auditor")
    assert "ivan is now auditor of Blue Fin Labs" in out
    with pytest.raises(CommandError, match="No organization"):
        _call("add_member", "nope", "ivan2", "--role", "lead")
    token = _call("issue_token", "ivan").strip().splitlines()[-1]
    assert token.startswith("ao_")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get("/api/v1/clients/").status_code == 200
    assert api.post("/api/v1/clients/", {"name": "x"}).status_code == 403  # auditor
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}x")
    assert api.get("/api/v1/clients/").status_code == 401


@pytest.mark.django_db
def test_revoked_and_expired_tokens_stop_working() -> None:
    from datetime import timedelta

    from django.utils import timezone

    from clients.models import ApiToken

    _call("create_organization", "Blue Fin Labs", "--owner", "maria")
    token = _call("issue_token", "maria").strip().splitlines()[-1]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    row = ApiToken.objects.get()
    assert row.token_hash != token
    assert token not in row.token_hash
    assert api.get("/api/v1/tokens/").status_code == 200
    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert api.get("/api/v1/tokens/").status_code == 401
    ApiToken.objects.update(expires_at=None)
    revoke = api.post(f"/api/v1/tokens/{row.public_id}/revoke/")
    assert revoke.status_code == 200
    assert api.get("/api/v1/tokens/").status_code == 401


@pytest.mark.django_db
def test_bootstrap_demo_is_idempotent(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    first = _call("bootstrap_demo")
    counts = [
        m.objects.count()
        for m in (Organization, Client, Dataset, StorageLocation, Membership, AccessGrant)
    ]
    second = _call("bootstrap_demo")
    assert counts == [
        m.objects.count()
        for m in (Organization, Client, Dataset, StorageLocation, Membership, AccessGrant)
    ]
    assert counts[1] == 2
    assert counts[2] >= 4
    assert counts[3] == 2
    logins = [line.split() for line in first.splitlines() if "password:" in line]
    assert logins == [line.split() for line in second.splitlines() if "password:" in line]
    assert [login[0] for login in logins] == ["owner", "lead", "operator"]
    passwords = {login[0]: login[-1] for login in logins}
    users = get_user_model().objects
    assert users.get(username="owner").check_password(passwords["owner"])
    # Django admin is the operator's: the agency's owner is no superuser, the operator is
    assert not users.get(username="owner").is_superuser
    operator = users.get(username="operator")
    assert operator.is_superuser
    assert not Membership.objects.filter(user=operator).exists()
    assert len({d.kind for d in Dataset.objects.all()}) >= 4
    assert (tmp_path / "demo-logins.json").stat().st_mode & 0o777 == 0o600
