"""Personal API tokens (`ao_…`, stored hashed) as a DRF authentication class, listed in
settings after the procurement tokens' class."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from clients.services import api_token_authenticate
from kernel.authentication import BearerAuthentication, bearer_security_definition


class ApiTokenAuthentication(BearerAuthentication):
    def authenticate_secret(self, raw: str) -> tuple[Any, Any] | None:
        token = api_token_authenticate(raw)
        return None if token is None else (token.user, token)


class ApiTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # untyped base
    target_class = ApiTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return bearer_security_definition(
            "A personal API token (`ao_…`), shown once when it is made."
        )
