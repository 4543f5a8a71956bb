"""Who may touch a client's data: grants, requests for them, and personal API tokens."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from clients.models.clients import Client
from clients.models.datasets import Dataset
from clients.models.organizations import Organization
from kernel.tenancy import TenantQuerySet

if TYPE_CHECKING:
    from kernel.tenancy import Actor


class GrantPermission(models.TextChoices):
    VIEW = "view", "View"
    RESTORE = "restore", "Restore and download"
    MANAGE = "manage", "Manage"


GRANT_LEVELS: dict[str, int] = {"view": 1, "restore": 2, "manage": 3}


class GrantQuerySet(TenantQuerySet["AccessGrant"]):
    def visible_rows(self, actor: Actor) -> Q:
        return Q(grantee_id=actor.user_id)  # one's own grants

    def active(self, now: Any) -> GrantQuerySet:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)

    def expired_unswept(self, now: Any) -> GrantQuerySet:
        """Grants past their expiry whose permissions the sweep has not removed yet."""
        return self.filter(revoked_at__isnull=True, expired_at__isnull=True, expires_at__lte=now)


class AccessGrant(models.Model):
    """Permission for one user on one client, or on one dataset of it, until it expires."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    grantee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_grants"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="grants")
    dataset = models.ForeignKey(
        Dataset,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="grants",
        help_text="Empty: the grant covers the whole client.",
    )
    permission = models.CharField(max_length=8, choices=GrantPermission.choices)
    reason = models.CharField(max_length=500)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Set by the every-minute sweep once the grant's guardian rows were removed at expiry.
    expired_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = GrantQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(permission__in=[p.value for p in GrantPermission]),
                name="grant_permission_valid",
            ),
        ]
        indexes = [models.Index(fields=["organization", "revoked_at", "expires_at"])]

    def __str__(self) -> str:
        target = self.dataset or self.client
        return f"{self.permission} on {target} for {self.grantee}"

    @property
    def level(self) -> int:
        return GRANT_LEVELS[self.permission]


class GrantRequestStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class GrantRequestQuerySet(TenantQuerySet["GrantRequest"]):
    def visible_rows(self, actor: Actor) -> Q:
        return Q(requested_by_id=actor.user_id)  # one's own requests


def grant_max_days() -> int:
    """The longest grant (and grant request) in days: the operator's setting, read when asked."""
    return int(settings.AGENCYOPS_GRANT_MAX_DAYS)


class GrantRequest(models.Model):
    """A lead's or member's request for a grant; an owner or admin approves or rejects it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="grant_requests"
    )
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="grant_requests")
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="grant_requests"
    )
    permission = models.CharField(max_length=8, choices=GrantPermission.choices)
    reason = models.CharField(max_length=500)
    days = models.PositiveIntegerField(
        default=7,
        validators=[MinValueValidator(1), MaxValueValidator(grant_max_days)],
        help_text="How long the grant should last once approved.",
    )
    status = models.CharField(
        max_length=8, choices=GrantRequestStatus.choices, default=GrantRequestStatus.PENDING
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decision_note = models.CharField(max_length=500, blank=True)
    grant = models.OneToOneField(
        AccessGrant, null=True, blank=True, on_delete=models.SET_NULL, related_name="request"
    )

    objects = GrantRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(permission__in=[p.value for p in GrantPermission]),
                name="grant_request_permission_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in GrantRequestStatus]),
                name="grant_request_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.requested_by} asks {self.permission} on {self.dataset or self.client}"


class ApiTokenQuerySet(TenantQuerySet["ApiToken"]):
    # Personal tokens are their owner's alone: an organization's owner does not see others'.
    whole_organization_sees_all = False

    def visible_rows(self, actor: Actor) -> Q:
        return Q(user_id=actor.user_id)  # a token without a user (procurement) sees none


class ApiToken(models.Model):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.user})"
