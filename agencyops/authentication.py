"""`Authorization: Bearer <token>`: personal API tokens and procurement tokens (stored hashed).

A procurement token (prefix `aop_`) has no user account: it authenticates as a
`ProcurementPrincipal` carrying its actor, and the API base class opens only the routes that
opt in to it (evidence and certificates) — every other route answers 404.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from agencyops.tenancy import Actor

# Public markers, not secrets: they tell the two kinds of token apart without a query.
PROCUREMENT_TOKEN_PREFIX = "aop_"  # noqa: S105


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


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

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
        if raw.startswith(PROCUREMENT_TOKEN_PREFIX):
            # The project's one reach into lifecycle, where procurement tokens live (the
            # project package wires the apps together; no app imports a higher one).
            from lifecycle.services import evidence_token_authenticate

            procurement = evidence_token_authenticate(raw)
            if procurement is None:
                raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
            return ProcurementPrincipal(Actor.procurement(procurement)), procurement

        from clients.services import api_token_authenticate

        token = api_token_authenticate(raw)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # untyped base
    """Documents the bearer scheme in the OpenAPI schema."""

    target_class = "agencyops.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token (`ao_…`), or a procurement token (`aop_…`) "
            "that reads one client's evidence and deletion certificates only.",
        }
