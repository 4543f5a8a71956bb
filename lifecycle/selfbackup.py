"""What the operator's self-backup records of this app: the counts its restore compares, and
the signing public keys, which must come back identical (every certificate and evidence file
ever issued verifies against them). Registered from AppConfig.ready, so `backups` names no
lifecycle model."""

from __future__ import annotations

import uuid
from typing import Any

from backups.services.selfbackup import inventory_register, quote_name
from clients.models import Organization
from lifecycle.models import AccessEvent, DeletionCertificate, SigningKey


def _signing_keys(cursor: Any) -> list[dict[str, str]]:
    org_table = quote_name(Organization._meta.db_table)
    org_pk = quote_name(Organization._meta.pk.column)
    key_table = quote_name(SigningKey._meta.db_table)
    key_org = quote_name(SigningKey._meta.get_field("organization").column)
    # Identifiers only, quoted, from the models' meta; no value is interpolated.
    cursor.execute(
        f'SELECT o."public_id", o."slug", k."public_key" FROM {key_table} k '  # noqa: S608
        f"JOIN {org_table} o ON o.{org_pk} = k.{key_org} ORDER BY o.\"slug\""
    )
    return [
        {"organization": str(uuid.UUID(str(pid))), "slug": str(slug), "public_key": str(pk)}
        for pid, slug, pk in cursor.fetchall()
    ]


def register() -> None:
    inventory_register(
        counted={
            "certificates": DeletionCertificate,
            "signing_keys": SigningKey,
            "access_events": AccessEvent,
        },
        readers={"signing_keys": _signing_keys},
    )
