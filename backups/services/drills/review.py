"""Reviewing a finished drill: an owner or admin records that they looked at its result."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from backups.models import RestoreRun
from backups.selectors import drill_list
from backups.selectors.drills import FINISHED_STATES
from kernel.exceptions import Conflict, NotFound, ValidationFailed
from kernel.tenancy import Actor

REVIEW_NOTE_MAX = 4000


@transaction.atomic
def drill_review(
    *, actor: Actor, drill: RestoreRun, note: str, now: datetime | None = None
) -> RestoreRun:
    """An owner or admin records that they looked at a finished drill's result (a later review
    replaces an earlier one: the record says who looked last, when, and what they concluded)."""
    if drill.organization_id != actor.organization_id or not drill.is_drill:
        raise NotFound()
    actor.require_admin("review restore drills")
    if drill.status not in FINISHED_STATES:
        raise Conflict("The drill has not finished yet; review it once it has.")
    note = note.strip()
    if len(note) > REVIEW_NOTE_MAX:
        raise ValidationFailed(
            "The note is too long.", fields={"note": f"At most {REVIEW_NOTE_MAX} characters."}
        )
    drill.reviewed_by = actor.user
    drill.reviewed_at = now or timezone.now()
    drill.review_note = note
    drill.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    return drill_list(actor=actor).get(pk=drill.pk)
