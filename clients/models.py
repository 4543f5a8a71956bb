"""Tenancy and inventory: who the agency is, whose data it holds, where, and who may touch it."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from kernel.local_roots import OutsideLocalRoots, local_directory_resolve
from kernel.tenancy import TenantQuerySet

if TYPE_CHECKING:
    from kernel.tenancy import Actor


class Organization(models.Model):
    """An agency: the tenant. Nothing of one organization is visible to another."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    LEAD = "lead", "Project lead"
    MEMBER = "member", "Member"
    AUDITOR = "auditor", "Auditor"


class Membership(models.Model):
    """A user's role in their organization. A user belongs to one organization."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "user__username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.organization}"


REVIEW_PERIOD = timedelta(days=182)  # every client and policy is reviewed twice a year


def default_next_review() -> datetime:
    """Six months from now: when a new client's or policy's protection is first reviewed."""
    return timezone.now() + REVIEW_PERIOD


class ClientStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    OFFBOARDING = "offboarding", "Offboarding"
    CLOSED = "closed", "Closed"


class ClientQuerySet(TenantQuerySet["Client"]):
    def visible_to(self, actor: Actor) -> ClientQuerySet:
        qs = self.filter(organization_id=actor.organization_id)
        if actor.sees_whole_organization:
            return qs
        return qs.filter(pk__in=actor.visible_client_ids)


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
        default=30,
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


class LocationKind(models.TextChoices):
    S3 = "s3", "S3-compatible bucket"
    LOCAL = "local", "Local directory"


class Provider(models.TextChoices):
    AWS = "aws", "Amazon S3"
    GCS = "gcs", "Google Cloud Storage (S3 interop)"
    AZURE = "azure", "Azure (S3 gateway)"
    BACKBLAZE = "backblaze", "Backblaze B2"
    WASABI = "wasabi", "Wasabi"
    MINIO = "minio", "MinIO"
    CEPH = "ceph", "Ceph"
    OTHER = "other", "Other S3-compatible"
    FILESYSTEM = "filesystem", "Local filesystem"


class LocationQuerySet(TenantQuerySet["StorageLocation"]):
    def visible_to(self, actor: Actor) -> LocationQuerySet:
        qs = self.filter(organization_id=actor.organization_id)
        if actor.sees_whole_organization:
            return qs
        # Shared locations are organization infrastructure; a client's dedicated bucket is that
        # client's data and follows its grants.
        return qs.filter(Q(client__isnull=True) | Q(client_id__in=actor.visible_client_ids))


class StorageLocation(models.Model):
    """A bucket/prefix on an S3-compatible service, or a local directory."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=8, choices=LocationKind.choices)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    endpoint_url = models.URLField(blank=True)
    region = models.CharField(max_length=64, blank=True)
    bucket = models.CharField(max_length=63, blank=True)
    prefix = models.CharField(max_length=1024, blank=True)
    client = models.ForeignKey(
        Client,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dedicated_locations",
        help_text="Set when the location holds only this client's data.",
    )
    # AES-GCM sealed JSON {access_key_id, secret_access_key} under the master key. Never
    # serialized, never logged, excluded from the audit log.
    credentials_sealed = models.BinaryField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = LocationQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="location_name_per_org"),
            models.CheckConstraint(
                condition=Q(kind="local", bucket="", provider="filesystem")
                | (Q(kind="s3") & ~Q(bucket="") & ~Q(provider="filesystem")),
                name="location_kind_fields_consistent",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials_sealed)

    @property
    def credentials_source(self) -> str:
        """Whose credentials reach the bucket: its own (stored, sealed), or the server's own
        ("ambient", only where the operator allows it); a local directory needs none."""
        if self.kind == LocationKind.LOCAL:
            return "none"
        return "stored" if self.credentials_sealed else "ambient"

    @property
    def display_uri(self) -> str:
        if self.kind == LocationKind.LOCAL:
            return f"file://{self.prefix}"
        prefix = self.prefix.strip("/")
        return f"s3://{self.bucket}/{prefix}" if prefix else f"s3://{self.bucket}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.kind == LocationKind.LOCAL:
            if self.bucket:
                errors["bucket"] = "A local directory has no bucket."
            if self.provider != Provider.FILESYSTEM:
                errors["provider"] = "A local directory's provider is 'filesystem'."
            if not self.prefix or not PurePosixPath(self.prefix).is_absolute():
                errors["prefix"] = "A local directory needs an absolute path."
            elif ".." in PurePosixPath(self.prefix).parts:
                errors["prefix"] = "The path may not contain '..'."
            elif self.organization_id is not None:
                # The operator's grant, not the tenant's wish: the directory (symlinks
                # resolved) lies in the organization's folder of a local root; stored resolved.
                try:
                    self.prefix = str(
                        local_directory_resolve(
                            self.prefix,
                            roots=settings.AGENCYOPS_LOCAL_ROOTS,
                            slug=self.organization.slug,
                        )
                    )
                except OutsideLocalRoots as exc:
                    errors["prefix"] = str(exc)
        elif self.kind == LocationKind.S3:
            if not self.bucket:
                errors["bucket"] = "An S3 location needs a bucket."
            if self.provider == Provider.FILESYSTEM:
                errors["provider"] = "Pick the S3 provider (aws, minio, …), not 'filesystem'."
            if self.prefix.startswith("/") or ".." in self.prefix.split("/"):
                errors["prefix"] = "A key prefix is relative and may not contain '..'."
        if errors:
            raise ValidationError(errors)


class NamespaceQuerySet(TenantQuerySet["ClientNamespace"]):
    def visible_to(self, actor: Actor) -> NamespaceQuerySet:
        qs = self.filter(organization_id=actor.organization_id)
        if actor.sees_whole_organization:
            return qs
        # A client's folder is the client's: a grant on one dataset shows that dataset's path,
        # not where the client's other data may go.
        return qs.filter(client_id__in=list(actor.client_levels))


class ClientNamespace(models.Model):
    """A client's own folder on a shared storage location. On a location not dedicated to one
    client, each client's datasets and restores stay inside its folder, and no two clients'
    folders overlap (checked by the service that assigns them)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    location = models.ForeignKey(
        StorageLocation, on_delete=models.PROTECT, related_name="namespaces"
    )
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="namespaces")
    path = models.CharField(
        max_length=1024, help_text="The client's folder, relative to the location."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = NamespaceQuerySet.as_manager()

    class Meta:
        ordering = ["location", "path", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "location", "client"], name="one_namespace_per_client"
            ),
            models.UniqueConstraint(
                fields=["organization", "location", "path"], name="namespace_path_once"
            ),
            models.CheckConstraint(condition=~Q(path=""), name="namespace_path_not_empty"),
        ]

    def __str__(self) -> str:
        return f"{self.client} at {self.location}:{self.path}"


class DatasetKind(models.TextChoices):
    RAW_CLIENT_DATA = "raw_client_data", "Raw client data"
    PROCESSED_DATA = "processed_data", "Processed data"
    LABELED_TRAINING_SET = "labeled_training_set", "Labeled training set"
    EVALUATION_SET = "evaluation_set", "Evaluation set"
    MODEL_ARTIFACT = "model_artifact", "Model artifact"
    CODE_REPOSITORY = "code_repository", "Code repository"
    PROJECT_DOCS = "project_docs", "Project docs"
    BUSINESS_RECORDS = "business_records", "Business records"
    COMMUNICATIONS_ARCHIVE = "communications_archive", "Communications archive"
    INFRASTRUCTURE_CONFIG = "infrastructure_config", "Infrastructure config"


class Classification(models.TextChoices):
    PUBLIC = "public", "Public"
    INTERNAL = "internal", "Internal"
    CONFIDENTIAL = "confidential", "Confidential"
    RESTRICTED = "restricted", "Restricted"


class LifecycleState(models.TextChoices):
    ACTIVE = "active", "Active"
    COMPLETED = "completed", "Completed"
    ARCHIVED = "archived", "Archived"
    DELETION_PENDING = "deletion_pending", "Deletion pending"
    DELETED = "deleted", "Deleted"


class DatasetQuerySet(TenantQuerySet["Dataset"]):
    client_path = "client_id"
    dataset_path = "pk"


MIN_DURATION = timedelta(minutes=1)
MAX_RPO = timedelta(days=366)
MAX_RTO = timedelta(days=90)


class Dataset(models.Model):
    """One body of client data the agency holds, and the promises attached to it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="datasets")
    engagement = models.ForeignKey(
        Engagement, null=True, blank=True, on_delete=models.PROTECT, related_name="datasets"
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=32, choices=DatasetKind.choices)
    classification = models.CharField(
        max_length=16, choices=Classification.choices, default=Classification.CONFIDENTIAL
    )
    contains_personal_data = models.BooleanField(default=False)
    source = models.CharField(max_length=500, blank=True, help_text="Where the data came from.")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="datasets")
    path = models.CharField(
        max_length=1024, blank=True, help_text="Path or key prefix of the primary copy."
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_datasets",
        help_text="Responsible for this dataset's backups.",
    )
    rpo = models.DurationField(
        "RPO",
        default=timedelta(hours=24),
        validators=[MinValueValidator(MIN_DURATION), MaxValueValidator(MAX_RPO)],
        help_text="Most data, in time, the client accepts to lose.",
    )
    rto = models.DurationField(
        "RTO",
        default=timedelta(hours=8),
        validators=[MinValueValidator(MIN_DURATION), MaxValueValidator(MAX_RTO)],
        help_text="Longest the client accepts to wait for a restore.",
    )
    lifecycle_state = models.CharField(
        max_length=20, choices=LifecycleState.choices, default=LifecycleState.ACTIVE
    )
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Empty when the system registered it (demo, import).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = DatasetQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "client", "name"], name="dataset_name_per_client"
            ),
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in DatasetKind]), name="dataset_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(classification__in=[c.value for c in Classification]),
                name="dataset_classification_valid",
            ),
            models.CheckConstraint(
                condition=Q(lifecycle_state__in=[s.value for s in LifecycleState]),
                name="dataset_lifecycle_state_valid",
            ),
            models.CheckConstraint(
                condition=Q(rpo__gt=timedelta(0)) & Q(rto__gt=timedelta(0)),
                name="dataset_rpo_rto_positive",
            ),
        ]
        indexes = [models.Index(fields=["organization", "client", "lifecycle_state"])]
        permissions = [
            ("restore_dataset", "Can restore and download the dataset"),
            ("manage_dataset", "Can edit the dataset and request its deletion"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, str] = {}
        engagement = self.engagement if self.engagement_id else None
        if engagement is not None and engagement.client_id != self.client_id:
            errors["engagement"] = "The engagement belongs to another client."
        if self.location_id and self.location.client_id not in (None, self.client_id):
            errors["location"] = "This location is dedicated to another client."
        if self.path.startswith("/") or ".." in self.path.split("/") or "\x00" in self.path:
            errors["path"] = "The path is relative to the location and may not contain '..'."
        if errors:
            raise ValidationError(errors)


class GrantPermission(models.TextChoices):
    VIEW = "view", "View"
    RESTORE = "restore", "Restore and download"
    MANAGE = "manage", "Manage"


GRANT_LEVELS: dict[str, int] = {"view": 1, "restore": 2, "manage": 3}


class GrantQuerySet(TenantQuerySet["AccessGrant"]):
    def visible_to(self, actor: Actor) -> GrantQuerySet:
        qs = self.filter(organization_id=actor.organization_id)
        if actor.sees_whole_organization:
            return qs
        return qs.filter(grantee_id=actor.user_id)

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
    def visible_to(self, actor: Actor) -> GrantRequestQuerySet:
        qs = self.filter(organization_id=actor.organization_id)
        if actor.sees_whole_organization:
            return qs
        return qs.filter(requested_by_id=actor.user_id)


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
    def visible_to(self, actor: Actor) -> ApiTokenQuerySet:
        if actor.user_id is None:
            return self.none()
        return self.filter(organization_id=actor.organization_id, user_id=actor.user_id)


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
