"""The agency's clients, their contracted work, and the querysets of rows owned by a client."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from clients.models.organizations import Organization
from kernel.tenancy import TenantQuerySet

if TYPE_CHECKING:
    from kernel.tenancy import Actor


REVIEW_PERIOD = timedelta(days=182)  # every client and policy is reviewed twice a year


def default_next_review() -> datetime:
    """Six months from now: when a new client's or policy's protection is first reviewed."""
    return timezone.now() + REVIEW_PERIOD


class ClientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    OFFBOARDING = "offboarding", "Offboarding"
    CLOSED = "closed", "Closed"


class ClientQuerySet(TenantQuerySet["Client"]):
    def visible_rows(self, actor: Actor) -> Q:
        # A client is visible beside the one dataset a grant covers, so it can be shown above it.
        return Q(pk__in=actor.visible_client_ids)


class Client(models.Model):
    """A customer of the agency whose data it holds."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="clients")
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80)
    status = models.CharField(
        max_length=16, choices=ClientStatus.choices, default=ClientStatus.ACTIVE
    )
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    contract_reference = models.CharField(max_length=200, blank=True)
    dpa_reference = models.CharField("DPA reference", max_length=200, blank=True)
    next_review_at = models.DateTimeField(
        default=default_next_review,
        help_text="When someone must next confirm this client's protection still fits.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClientQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="client_slug_per_org"),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in ClientStatus]), name="client_status_valid"
            ),
        ]
        permissions = [
            ("restore_client", "Can restore and download the client's data"),
            ("manage_client", "Can register datasets and request deletions for the client"),
        ]

    def __str__(self) -> str:
        return self.name


DEFAULT_DELETION_DUE_DAYS = 30


class EngagementStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    ENDED = "ended", "Ended"


class ClientScopedQuerySet(TenantQuerySet[Any]):
    """Rows of one client as a whole: visible with a grant on that client (a grant on one of
    its datasets does not show them; see `grant_filter`)."""

    client_path = "client_id"


class ClientOrDatasetScopedQuerySet(ClientScopedQuerySet):
    """Rows of a client that may be about one of its datasets (a hold, an obligation, a
    deletion of one dataset): a grant on that dataset shows those rows, and only those."""

    dataset_path = "dataset_id"


class Engagement(models.Model):
    """A piece of contracted work for a client; its end starts the deletion clock."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="engagements")
    name = models.CharField(max_length=200)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=EngagementStatus.choices, default=EngagementStatus.ACTIVE
    )
    deletion_due_days = models.PositiveIntegerField(
        default=DEFAULT_DELETION_DUE_DAYS,
        validators=[MaxValueValidator(3650)],
        help_text="Days after the engagement ends by which its data must be deleted.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ClientScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-starts_on", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "client", "name"], name="engagement_name_per_client"
            ),
            models.CheckConstraint(
                condition=Q(ends_on__isnull=True) | Q(ends_on__gte=models.F("starts_on")),
                name="engagement_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in EngagementStatus]),
                name="engagement_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.client}: {self.name}"

    def clean(self) -> None:
        if self.ends_on and self.starts_on and self.ends_on < self.starts_on:
            raise ValidationError({"ends_on": "The engagement cannot end before it starts."})
