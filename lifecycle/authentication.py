"""Procurement tokens (`aop_…`, stored hashed) as a DRF authentication class: the token
authenticates as a `ProcurementPrincipal` carrying its actor. Listed first in settings, so a
procurement secret never reaches the personal tokens' class."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from kernel.authentication import (
    BearerAuthentication,
    ProcurementPrincipal,
    bearer_security_definition,
)
from kernel.tenancy import Actor
from lifecycle.services.evidence.tokens import PROCUREMENT_TOKEN_PREFIX, evidence_token_authenticate


class ProcurementTokenAuthentication(BearerAuthentication):
    prefix = PROCUREMENT_TOKEN_PREFIX

    def authenticate_secret(self, raw: str) -> tuple[Any, Any] | None:
        token = evidence_token_authenticate(raw)
        return None if token is None else (ProcurementPrincipal(Actor.procurement(token)), token)


class ProcurementTokenScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]  # untyped base
    target_class = ProcurementTokenAuthentication
    name = "procurementToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return bearer_security_definition(
            "A procurement token (`aop_…`): reads one client's evidence and deletion "
            "certificates, and nothing else."
        )
