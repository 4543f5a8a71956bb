"""`Authorization: Bearer <token>`: the header's parsing and the principal of a token without
an account. The token kinds live in their apps: personal API tokens in `clients`
(`clients.authentication`), procurement tokens in `lifecycle` (`lifecycle.authentication`).

A procurement token (prefix `aop_`) has no user account: it authenticates as a
`ProcurementPrincipal` carrying its actor, and the API base class opens only the routes that
opt in to it (evidence and certificates) — every other route answers 404.
"""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from kernel.tenancy import Actor


class ProcurementPrincipal:
    """`request.user` of a procurement token: authenticated, but no account, no membership,
    no permissions of its own — only `actor`, which the API base class adopts."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    def get_username(self) -> str:
        return str(self.actor.procurement_token.label)

    def __str__(self) -> str:
        return self.get_username()

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False


class BearerAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <secret>`: the header parsed once; each app that issues tokens
    subclasses it for its own `prefix` (settings list the subclasses, procurement first)."""

    keyword = "Bearer"
    prefix = ""  # a subclass answers only for secrets that start with it ("" = any)

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:  # "Bearer" and the token
            raise exceptions.AuthenticationFailed("Malformed Authorization header.")
        try:
            raw = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Malformed token.") from None
        if not raw.startswith(self.prefix):
            return None  # another class's token
        result = self.authenticate_secret(raw)
        if result is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return result

    def authenticate_secret(self, raw: str) -> tuple[Any, Any] | None:
        raise NotImplementedError

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def bearer_security_definition(description: str) -> dict[str, str]:
    """The OpenAPI security scheme of a bearer token class (each app's schema extension)."""
    return {"type": "http", "scheme": "bearer", "description": description}
