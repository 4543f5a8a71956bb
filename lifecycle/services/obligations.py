"""Retention obligations, engagement end, and legal holds (which suspend pruning)."""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Sequence
from datetime import date

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backups.services import pruning_suspend
from clients.models import Client, Dataset, Engagement
from clients.services import engagement_end_record
from kernel.changes import UNCHANGED, Unchanged, changes_given
from kernel.exceptions import Conflict, ValidationFailed
from kernel.tenancy import Actor
from lifecycle.models import (
    RETAIN_KINDS,
    LegalHold,
    ObligationKind,
    ObligationSource,
    RetentionObligation,
)


def _add_years(day: date, years: int) -> date:
    year = day.year + years
    return day.replace(year=year, day=min(day.day, calendar.monthrange(year, day.month)[1]))


def obligation_due_on(obligation: RetentionObligation) -> date | None:
    """delete_after_engagement: the engagement's end + N days (None while it runs);
    retain_until: that date; retain_for: N years after the engagement ends (or, without an
    engagement, after the obligation was recorded)."""
    engagement = obligation.engagement or (
        obligation.dataset.engagement if obligation.dataset is not None else None
    )
    ended = engagement.ends_on if engagement is not None and engagement.status == "ended" else None
    if obligation.kind == ObligationKind.DELETE_AFTER_ENGAGEMENT:
        if ended is None:
            return None
        return date.fromordinal(ended.toordinal() + (obligation.days_after_end or 0))
    if obligation.kind == ObligationKind.RETAIN_UNTIL:
        return obligation.retain_until
    start = ended or (obligation.created_at or timezone.now()).date()
    return _add_years(start, obligation.retain_years or 0)


def _save_obligation(obligation: RetentionObligation) -> RetentionObligation:
    obligation.full_clean(exclude=["drafted_request"])
    obligation.due_on = obligation_due_on(obligation)
    obligation.save()
    return obligation


@transaction.atomic
def obligation_create(
    *,
    actor: Actor,
    client: Client,
    kind: str,
    source: str,
    engagement: Engagement | None = None,
    dataset: Dataset | None = None,
    days_after_end: int | None = None,
    retain_until: date | None = None,
    retain_years: int | None = None,
    source_reference: str = "",
) -> RetentionObligation:
    """Admins record what a contract, DPA or regulation requires; the due date is computed."""
    actor.require_admin("record retention obligations")
    obligation = RetentionObligation(
        organization=actor.organization,
        client=client,
        engagement=engagement,
        dataset=dataset,
        kind=kind,
        days_after_end=days_after_end,
        retain_until=retain_until,
        retain_years=retain_years,
        source=source,
        source_reference=source_reference,
        created_by=actor.user,
    )
    return _save_obligation(obligation)


@transaction.atomic
def obligation_update(
    *,
    actor: Actor,
    obligation: RetentionObligation,
    kind: str | Unchanged = UNCHANGED,
    days_after_end: int | Unchanged | None = UNCHANGED,
    retain_until: date | Unchanged | None = UNCHANGED,
    retain_years: int | Unchanged | None = UNCHANGED,
    source: str | Unchanged = UNCHANGED,
    source_reference: str | Unchanged = UNCHANGED,
) -> RetentionObligation:
    """Edit an obligation (not its scope: it has no argument for it); the due date is
    recomputed."""
    actor.require_admin("edit retention obligations")
    changes = changes_given(
        kind=kind,
        days_after_end=days_after_end,
        retain_until=retain_until,
        retain_years=retain_years,
        source=source,
        source_reference=source_reference,
    )
    for name, value in changes.items():
        setattr(obligation, name, value)
    return _save_obligation(obligation)


@transaction.atomic
def obligation_delete(*, actor: Actor, obligation: RetentionObligation) -> None:
    """Remove an obligation recorded by mistake; one that drafted a request stays as evidence."""
    actor.require_admin("remove retention obligations")
    if obligation.drafted_request_id is not None:
        raise Conflict("This obligation drafted a deletion request; it is kept as its record.")
    obligation.delete()


@transaction.atomic
def engagement_end(
    *, actor: Actor, engagement: Engagement, ends_on: date | None = None
) -> Engagement:
    """End an engagement (today by default) and compute its obligations' due dates. An
    engagement without a deletion obligation gets one from its `deletion_due_days`. The end
    is today or a day before it, never before the engagement started."""
    today = timezone.localdate()
    ends_on = ends_on or today
    if ends_on > today:
        raise ValidationFailed(
            "An engagement ends today or on a past day, not in the future.",
            fields={"ends_on": f"At the latest today ({today:%Y-%m-%d})."},
        )
    if engagement.starts_on is not None and ends_on < engagement.starts_on:
        raise ValidationFailed(
            "An engagement cannot end before it started.",
            fields={"ends_on": f"On or after its start ({engagement.starts_on:%Y-%m-%d})."},
        )
    engagement = engagement_end_record(actor=actor, engagement=engagement, ends_on=ends_on)
    scope = RetentionObligation.objects.filter(
        Q(engagement=engagement) | Q(dataset__engagement=engagement)
    )
    if not scope.filter(kind=ObligationKind.DELETE_AFTER_ENGAGEMENT).exists():
        RetentionObligation.objects.create(
            organization=engagement.organization,
            client=engagement.client,
            engagement=engagement,
            kind=ObligationKind.DELETE_AFTER_ENGAGEMENT,
            days_after_end=engagement.deletion_due_days,
            source=ObligationSource.CONTRACT,
            source_reference="engagement deletion term",
            created_by=actor.user,
        )
    for obligation in scope.select_related("engagement", "dataset__engagement"):
        obligation.due_on = obligation_due_on(obligation)
        obligation.save(update_fields=["due_on"])
    return engagement


# --- legal holds ---


def _hold_datasets(hold: LegalHold) -> Iterable[Dataset]:
    if hold.dataset is not None:
        return [hold.dataset]
    return Dataset.objects.filter(client_id=hold.client_id)


def holds_covering(datasets: Iterable[Dataset]) -> list[LegalHold]:
    """The active legal holds over any of these datasets (client-wide or on the dataset)."""
    items = list(datasets)
    if not items:
        return []
    clients = {d.client_id for d in items}
    ids = [d.pk for d in items]
    return list(
        LegalHold.objects.active()
        .filter(client_id__in=clients)
        .filter(Q(dataset__isnull=True) | Q(dataset_id__in=ids))
        .order_by("placed_at", "id")
    )


def retentions_covering(datasets: Iterable[Dataset], today: date) -> list[RetentionObligation]:
    """Retain-type obligations still running over any of these datasets."""
    items = list(datasets)
    if not items:
        return []
    engagement_ids = {d.engagement_id for d in items if d.engagement_id}
    return list(
        RetentionObligation.objects.filter(kind__in=RETAIN_KINDS, due_on__gt=today)
        .filter(client_id__in={d.client_id for d in items})
        .filter(
            Q(dataset_id__in=[d.pk for d in items])
            | Q(dataset__isnull=True, engagement__isnull=True)
            | Q(dataset__isnull=True, engagement_id__in=engagement_ids)
        )
        .order_by("due_on", "id")
    )


def _suspend_pruning(datasets: Sequence[Dataset], suspended: bool) -> None:
    pruning_suspend(datasets=datasets, suspended=suspended)


@transaction.atomic
def legal_hold_place(
    *, actor: Actor, client: Client, reason: str, dataset: Dataset | None = None
) -> LegalHold:
    """Owners and admins place a hold: deletions in scope are refused and pruning stops."""
    actor.require_admin("place legal holds")
    if dataset is not None and dataset.client_id != client.pk:
        raise ValidationFailed(
            "The dataset belongs to another client.", fields={"dataset": "Another client's."}
        )
    hold = LegalHold(
        organization=actor.organization,
        client=client,
        dataset=dataset,
        reason=reason,
        placed_by=actor.user,
    )
    hold.full_clean()
    hold.save()
    _suspend_pruning(list(_hold_datasets(hold)), True)
    return hold


@transaction.atomic
def legal_hold_release(*, actor: Actor, hold: LegalHold, comment: str = "") -> LegalHold:
    """Release a hold, saying why; pruning resumes on each dataset no other active hold
    covers."""
    actor.require_admin("release legal holds")
    hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
    if hold.released_at is not None:
        raise Conflict("The legal hold was already released.")
    hold.released_at = timezone.now()
    hold.released_by = actor.user
    hold.release_comment = comment[:500]
    hold.save(update_fields=["released_at", "released_by", "release_comment"])
    free = [d for d in _hold_datasets(hold) if not holds_covering([d])]
    _suspend_pruning(free, False)
    return hold


def legal_hold_cover_new_dataset(dataset: Dataset) -> None:
    """A dataset registered under a client-wide hold is held too (pruning suspended)."""
    if holds_covering([dataset]):
        _suspend_pruning([dataset], True)
