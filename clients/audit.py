"""django-auditlog registration for the inventory; secrets never enter the audit trail."""

from __future__ import annotations

from auditlog.registry import auditlog


def register_models() -> None:
    from clients.models import (
        AccessGrant,
        ApiToken,
        Client,
        Dataset,
        Engagement,
        GrantRequest,
        Membership,
        Organization,
        StorageLocation,
    )

    for model in (Organization, Membership, Client, Engagement, Dataset, AccessGrant, GrantRequest):
        if not auditlog.contains(model):
            auditlog.register(model)
    if not auditlog.contains(StorageLocation):
        # The sealed credentials are left out entirely: not even their ciphertext is logged.
        auditlog.register(StorageLocation, exclude_fields=["credentials_sealed"])
    if not auditlog.contains(ApiToken):
        auditlog.register(ApiToken, exclude_fields=["token_hash"])
