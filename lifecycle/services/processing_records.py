"""The processor's record of processing per client (GDPR Art. 30(2)), edited by admins and
published in the client's evidence."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from django.db import transaction

from clients.models import Client
from kernel.changes import UNCHANGED, Unchanged, changes_given
from kernel.exceptions import NotFound, ValidationFailed
from kernel.tenancy import Actor
from lifecycle.models import ProcessingRecord

SAFEGUARDS = (
    "adequacy_decision",
    "standard_contractual_clauses",
    "binding_corporate_rules",
    "code_of_conduct",
    "certification",
    "derogation",
)
TRANSFER_FIELDS = ("country", "recipient", "safeguard", "documentation")
MAX_ITEMS = 50
MAX_ITEM_CHARS = 300
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def processing_record_get(client: Client) -> ProcessingRecord:
    """The client's record, or an empty unsaved one (nothing recorded yet)."""
    record = ProcessingRecord.objects.filter(client=client).first()
    return record or ProcessingRecord(organization_id=client.organization_id, client=client)


def _categories(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise ValidationFailed(
            "Invalid categories.",
            fields={"processing_categories": f"A list of at most {MAX_ITEMS} texts."},
        )
    cleaned = []
    for item in value:
        if not isinstance(item, str) or not item.strip() or len(item) > MAX_ITEM_CHARS:
            raise ValidationFailed(
                "Invalid categories.",
                fields={
                    "processing_categories": f"Each category is a text of 1 to "
                    f"{MAX_ITEM_CHARS} characters."
                },
            )
        cleaned.append(item.strip())
    return cleaned


def _transfers(value: Any) -> list[dict[str, str]]:
    def bad(message: str) -> ValidationFailed:
        return ValidationFailed("Invalid transfers.", fields={"transfers": message})

    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise bad(f"A list of at most {MAX_ITEMS} transfers.")
    cleaned = []
    for item in value:
        if not isinstance(item, Mapping) or set(item) - set(TRANSFER_FIELDS):
            raise bad(f"Each transfer has only {', '.join(TRANSFER_FIELDS)}.")
        entry = {name: item.get(name, "") for name in TRANSFER_FIELDS}
        if not all(isinstance(v, str) and len(v) <= MAX_ITEM_CHARS for v in entry.values()):
            raise bad(f"Each field is a text of at most {MAX_ITEM_CHARS} characters.")
        entry["country"] = entry["country"].strip().upper()
        if not _COUNTRY.match(entry["country"]) and not entry["country"].startswith("INTL:"):
            raise bad("country: an ISO 3166-1 alpha-2 code, or 'INTL:<organisation>'.")
        if not entry["recipient"].strip():
            raise bad("recipient: who receives the data.")
        if entry["safeguard"] not in SAFEGUARDS:
            raise bad(f"safeguard: one of {', '.join(SAFEGUARDS)}.")
        cleaned.append(entry)
    return cleaned


@transaction.atomic
def processing_record_update(
    *,
    actor: Actor,
    client: Client,
    processor_contact: str | Unchanged = UNCHANGED,
    processor_representative: str | Unchanged = UNCHANGED,
    processor_dpo: str | Unchanged = UNCHANGED,
    controller_contact: str | Unchanged = UNCHANGED,
    controller_representative: str | Unchanged = UNCHANGED,
    controller_dpo: str | Unchanged = UNCHANGED,
    processing_categories: Sequence[str] | Unchanged = UNCHANGED,
    transfers: Sequence[Mapping[str, str]] | Unchanged = UNCHANGED,
    security_measures: str | Unchanged = UNCHANGED,
) -> ProcessingRecord:
    """Change the client's record of processing. Owners and admins only."""
    actor.require_admin("edit the record of processing")
    if client.organization_id != actor.organization_id:
        raise NotFound()
    changes = changes_given(
        processor_contact=processor_contact,
        processor_representative=processor_representative,
        processor_dpo=processor_dpo,
        controller_contact=controller_contact,
        controller_representative=controller_representative,
        controller_dpo=controller_dpo,
        processing_categories=processing_categories,
        transfers=transfers,
        security_measures=security_measures,
    )
    record = ProcessingRecord.objects.select_for_update().filter(
        client=client
    ).first() or ProcessingRecord(organization_id=client.organization_id, client=client)
    for name, value in changes.items():
        if name == "processing_categories":
            value = _categories(value)
        elif name == "transfers":
            value = _transfers(value)
        setattr(record, name, value)
    record.updated_by = actor.user
    record.full_clean()
    record.save()
    return record
