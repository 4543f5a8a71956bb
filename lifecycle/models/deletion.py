"""Deletion requests: the organization's approval settings, the request with its plan, each
admin's decision, the items the plan deletes, and the signed certificate that proves it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from clients.models import (
    Client,
    ClientOrDatasetScopedQuerySet,
    ClientScopedQuerySet,
    Dataset,
    Organization,
    StorageLocation,
)
from kernel.tenancy import TenantQuerySet
from lifecycle.models.obligations import RetentionObligation


class DeletionScope(models.TextChoices):
    CLIENT = "client", "Client"
    ENGAGEMENT = "engagement", "Engagement"
    DATASET = "dataset", "Dataset"


class DeletionState(models.TextChoices):
    DRAFTED = "drafted", "Awaiting approval"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    EXECUTING = "executing", "Executing"
    VERIFIED = "verified", "Deleted and verified"
    FAILED = "failed", "Failed"


class DeletionSettings(models.Model):
    """Per organization: how many distinct admins must approve a deletion (four or six eyes)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    approvals_required = models.PositiveSmallIntegerField(default=1)

    objects = TenantQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "deletion settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1) & Q(approvals_required__lte=2),
                name="deletion_settings_approvals_1_or_2",
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id}: {self.approvals_required} approval(s)"


class DeletionRequest(models.Model):
    """Delete a scope's data everywhere: drafted with its plan, approved by another admin,
    executed and verified by workers, proved by a certificate."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="deletion_requests")
    engagement = models.ForeignKey(
        "clients.Engagement",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="deletion_requests",
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.PROTECT, related_name="deletion_requests"
    )
    scope = models.CharField(max_length=16, choices=DeletionScope.choices)
    reason = models.CharField(max_length=500)
    obligation = models.ForeignKey(
        RetentionObligation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when the daily task drafted it for a due obligation.",
    )
    state = models.CharField(
        max_length=16, choices=DeletionState.choices, default=DeletionState.DRAFTED
    )
    approvals_required = models.PositiveSmallIntegerField(default=1)
    # The client's own databases (the primaries of database datasets) are dropped too: asked
    # for explicitly, and confirmed by every approver on a line of its own.
    drop_primary_databases = models.BooleanField(default=False)
    plan = models.JSONField(default=dict, blank=True)
    plan_computed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    executed_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    versions_total = models.PositiveBigIntegerField(default=0)
    versions_deleted = models.PositiveBigIntegerField(default=0)
    keys_destroyed_at = models.DateTimeField(null=True, blank=True)
    verification = models.JSONField(default=dict, blank=True)
    # Every legal-hold and obligation check a step made (drafting, each approval, each
    # execution attempt): when, and which holds and obligations it found in which state.
    checks = models.JSONField(default=list, blank=True)
    follow_up_at = models.DateTimeField(
        null=True, blank=True, help_text="When the object lock on retained versions expires."
    )
    error = models.TextField(blank=True)

    objects = ClientOrDatasetScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in DeletionState]),
                name="deletion_request_state_valid",
            ),
            models.CheckConstraint(
                condition=(
                    Q(scope="client", engagement__isnull=True, dataset__isnull=True)
                    | Q(scope="engagement", engagement__isnull=False, dataset__isnull=True)
                    | Q(scope="dataset", dataset__isnull=False)
                ),
                name="deletion_request_scope_consistent",
            ),
            models.CheckConstraint(
                condition=Q(approvals_required__gte=1) & Q(approvals_required__lte=2),
                name="deletion_request_approvals_1_or_2",
            ),
        ]
        indexes = [models.Index(fields=["organization", "state"])]

    def __str__(self) -> str:
        return f"deletion of {self.dataset or self.engagement or self.client} ({self.state})"

    @property
    def progress_percent(self) -> int:
        if self.state == DeletionState.VERIFIED:
            return 100
        if not self.versions_total:
            return 0
        return min(100, int(self.versions_deleted * 100 / self.versions_total))


class DeletionDecision(models.TextChoices):
    APPROVE = "approve", "Approved"
    REJECT = "reject", "Rejected"


class DeletionApproval(models.Model):
    """One admin's recorded decision on a deletion request, with their comment."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    request = models.ForeignKey(DeletionRequest, on_delete=models.CASCADE, related_name="approvals")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=8, choices=DeletionDecision.choices)
    comment = models.CharField(max_length=1000, blank=True)
    # The approver's own line for a plan that drops the client's databases.
    primary_drop_confirmed = models.BooleanField(default=False)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["decided_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "decided_by"], name="one_decision_per_admin"
            ),
            models.CheckConstraint(
                condition=Q(decision__in=[d.value for d in DeletionDecision]),
                name="deletion_decision_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} by {self.decided_by_id}"


class ItemRole(models.TextChoices):
    PRIMARY = "primary", "Primary copy"
    BACKUP = "backup", "Backup repository"
    RESTORED = "restored", "Copy written by a restore"


class DeletionItem(models.Model):
    """One prefix on one location that the plan deletes: the unit of resumable work."""

    request = models.ForeignKey(DeletionRequest, on_delete=models.CASCADE, related_name="items")
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    role = models.CharField(max_length=8, choices=ItemRole.choices)
    prefix = models.CharField(max_length=1100)
    objects_found = models.PositiveBigIntegerField(default=0)
    versions_found = models.PositiveBigIntegerField(default=0)
    delete_markers_found = models.PositiveBigIntegerField(default=0)
    bytes_found = models.PositiveBigIntegerField(default=0)
    versions_deleted = models.PositiveBigIntegerField(default=0)
    # [{"key", "version_id", "retain_until"}]: versions object lock refused to delete.
    retained = models.JSONField(default=list, blank=True)
    done_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["request", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["request", "location", "prefix"], name="deletion_item_once"
            ),
            models.CheckConstraint(
                condition=~Q(prefix="") & ~Q(prefix="/"), name="deletion_item_prefix_not_root"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location_id}:{self.prefix}"


class CertificateQuerySet(ClientScopedQuerySet):
    """A certificate is about what its request deleted: one dataset's shows to a grant on it."""

    dataset_path = "request__dataset_id"


class DeletionCertificate(models.Model):
    """The signed proof of a verified deletion. `document` is what was signed."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    request = models.OneToOneField(
        DeletionRequest, on_delete=models.PROTECT, related_name="certificate"
    )
    document = models.JSONField()
    sha256 = models.CharField(max_length=64)
    signature = models.CharField(max_length=200)
    public_key = models.CharField(max_length=64)
    issued_at = models.DateTimeField()

    objects = CertificateQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at", "id"]

    def __str__(self) -> str:
        return f"certificate {self.public_id}"
