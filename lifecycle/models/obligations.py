"""Retention obligations (what a contract, DPA or regulation says about a scope's data) and
legal holds (which block deletion and pruning while active)."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q

from clients.models import Client, ClientOrDatasetScopedQuerySet, Dataset, Organization


class ObligationKind(models.TextChoices):
    DELETE_AFTER_ENGAGEMENT = "delete_after_engagement", "Delete N days after the engagement ends"
    RETAIN_UNTIL = "retain_until", "Retain until a date"
    RETAIN_FOR = "retain_for", "Retain for N years"


RETAIN_KINDS = (ObligationKind.RETAIN_UNTIL, ObligationKind.RETAIN_FOR)


class ObligationSource(models.TextChoices):
    CONTRACT = "contract", "Contract clause"
    DPA = "dpa", "Data processing agreement"
    REGULATION = "regulation", "Regulation"


class RetentionObligation(models.Model):
    """What the contract, DPA or a regulation says about keeping or deleting a scope's data.

    Scope: the client, one engagement of it, or one dataset of it. `due_on` is computed: for
    delete_after_engagement the day deletion is due (empty until the engagement ends); for the
    retain kinds the day the retention ends — deletion of the scope is blocked until then.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="obligations")
    engagement = models.ForeignKey(
        "clients.Engagement",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="obligations",
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="obligations"
    )
    kind = models.CharField(max_length=32, choices=ObligationKind.choices)
    days_after_end = models.PositiveIntegerField(null=True, blank=True)
    retain_until = models.DateField(null=True, blank=True)
    retain_years = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=ObligationSource.choices)
    source_reference = models.CharField(
        max_length=300, blank=True, help_text="Clause, DPA section or regulation article."
    )
    due_on = models.DateField(null=True, blank=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Set once the daily task drafted this obligation's deletion request (idempotency).
    drafted_request = models.ForeignKey(
        "DeletionRequest", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ClientOrDatasetScopedQuerySet.as_manager()

    class Meta:
        ordering = ["due_on", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in ObligationKind]),
                name="obligation_kind_valid",
            ),
            models.CheckConstraint(
                condition=Q(source__in=[s.value for s in ObligationSource]),
                name="obligation_source_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(kind="delete_after_engagement", days_after_end__isnull=False)
                    | Q(kind="retain_until", retain_until__isnull=False)
                    | Q(kind="retain_for", retain_years__isnull=False)
                ),
                name="obligation_kind_fields_present",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} for {self.dataset or self.engagement or self.client}"

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        engagement = self.engagement if self.engagement_id else None
        dataset = self.dataset if self.dataset_id else None
        if engagement is not None and engagement.client_id != self.client_id:
            errors["engagement"] = "The engagement belongs to another client."
        if dataset is not None and dataset.client_id != self.client_id:
            errors["dataset"] = "The dataset belongs to another client."
        if self.kind == ObligationKind.DELETE_AFTER_ENGAGEMENT:
            if self.days_after_end is None:
                errors["days_after_end"] = "Say how many days after the engagement ends."
            if engagement is None and not (dataset is not None and dataset.engagement_id):
                errors["engagement"] = "Deletion after an engagement needs the engagement."
        if self.kind == ObligationKind.RETAIN_UNTIL and self.retain_until is None:
            errors["retain_until"] = "Give the date the retention ends."
        if self.kind == ObligationKind.RETAIN_FOR and not self.retain_years:
            errors["retain_years"] = "Give the number of years to retain."
        if errors:
            raise ValidationError(errors)


class LegalHoldQuerySet(ClientOrDatasetScopedQuerySet):
    def active(self) -> Any:
        return self.filter(released_at__isnull=True)


class LegalHold(models.Model):
    """While active, nothing in its scope (a client, or one dataset) is deleted or pruned."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="legal_holds")
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="legal_holds"
    )
    reason = models.CharField(max_length=500)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    placed_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    release_comment = models.CharField(
        max_length=500, blank=True, help_text="Why it was released (who lifted the duty)."
    )

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "id"]
        indexes = [models.Index(fields=["organization", "client", "released_at"])]

    def __str__(self) -> str:
        return f"legal hold on {self.dataset or self.client}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None
