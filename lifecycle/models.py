"""Obligations and proof. Here: the access log, hash-chained per organization."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

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


class AccessAction(models.TextChoices):
    VIEW_DATASET = "view_dataset", "Viewed a dataset"
    DOWNLOAD = "download", "Downloaded data"
    RESTORE = "restore", "Restored data"
    RESTORE_DRILL = "restore_drill", "Restore drill"
    EVIDENCE_READ = "evidence_read", "Read evidence"
    GRANT = "grant", "Granted access"
    REVOKE = "revoke", "Revoked access"
    EXPIRE = "expire", "Access expired"
    TOKEN_CREATED = "token_created", "Created an API token"
    TOKEN_USED = "token_used", "Used an API token"
    DELETION_APPROVED = "deletion_approved", "Approved a deletion"
    LOGIN = "login", "Signed in"
    LOGIN_FAILED = "login_failed", "Failed to sign in"
    STORAGE_ACCESS = "storage_access", "Storage-side access"


class ActorKind(models.TextChoices):
    USER = "user", "User"
    API_TOKEN = "api_token", "API token"
    PROCUREMENT_TOKEN = "procurement_token", "Procurement token"
    SYSTEM = "system", "System"
    STORAGE = "storage", "Storage principal"


class AppendOnly(Exception):
    """The access log is append-only: rows are never updated or deleted through the ORM."""


class AccessEventQuerySet(TenantQuerySet["AccessEvent"]):
    """Whole-organization roles read everything; leads read the events of the clients (or
    datasets) they hold grants on; members and tokens read nothing (the selector refuses)."""

    client_path = "client_id"
    dataset_path = "dataset_id"

    def update(self, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Access events are never changed.")

    def delete(self) -> NoReturn:
        raise AppendOnly("Access events are never deleted.")


class AccessEvent(models.Model):
    """One access to client data, or to the rights over it, in its organization's hash chain.

    `hash` = sha256(prev_hash + canonical JSON of every field below but `hash`, `recorded_at`
    and the foreign keys; the keys' public ids are in the canonical form instead). `seq` runs
    1, 2, 3… per organization with no gaps, so a deleted, inserted or reordered row breaks the
    chain where it happened.
    """

    public_id = models.UUIDField(unique=True, editable=False)  # set when recorded: idempotency
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    seq = models.PositiveBigIntegerField()
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    action = models.CharField(max_length=24, choices=AccessAction.choices)
    actor_kind = models.CharField(max_length=20, choices=ActorKind.choices)
    actor_label = models.CharField(
        max_length=300, help_text="username, token id, 'system' or 'storage:<requester>'."
    )
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # never rewritten: an event outlives the user it names
        related_name="+",
        db_constraint=False,
    )
    actor_token_ref = models.UUIDField(null=True, blank=True)
    # Targets: foreign keys to filter and scope by; *_ref are the hashed public ids.
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False
    )
    client_ref = models.UUIDField(null=True, blank=True)
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False
    )
    dataset_ref = models.UUIDField(null=True, blank=True)
    snapshot_ref = models.UUIDField(null=True, blank=True)
    source_ip = models.CharField(max_length=45, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    details = models.JSONField(default=dict, blank=True)
    # Storage-side events: the log object and line they came from (idempotent re-import).
    source_object = models.CharField(max_length=1100, blank=True)
    source_line = models.PositiveIntegerField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AccessEventQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        constraints = [
            # One successor per link: two appends can never both become event n (no forks).
            models.UniqueConstraint(
                fields=["organization", "seq"], name="access_event_seq_per_org"
            ),
            models.UniqueConstraint(
                fields=["organization", "source_object", "source_line"],
                condition=~Q(source_object=""),
                name="access_event_log_line_once",
            ),
            models.CheckConstraint(
                condition=Q(action__in=[a.value for a in AccessAction]),
                name="access_event_action_valid",
            ),
            models.CheckConstraint(
                condition=Q(actor_kind__in=[k.value for k in ActorKind]),
                name="access_event_actor_kind_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["organization", "client_ref"]),
            models.Index(fields=["organization", "dataset_ref"]),
            models.Index(fields=["organization", "actor_label"]),
            models.Index(fields=["organization", "occurred_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label}"

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AppendOnly("Access events are never deleted.")


class AccessChainHead(models.Model):
    """The last link of an organization's chain. Appenders lock this row (select_for_update),
    so appends to one organization are serialized across workers and machines."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, primary_key=True, related_name="access_chain"
    )
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="")
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.organization} at #{self.seq}"


class PendingAccessEvent(models.Model):
    """An access event recorded but not yet in its chain: the transactional outbox.

    `access_event_record` writes it in the caller's transaction, so it exists exactly when the
    recorded action committed; the drain appends it to the chain and deletes it in one
    transaction, so it is appended once. `id` is the order the drain appends in.
    """

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="+")
    public_id = models.UUIDField(unique=True, editable=False)  # the event's own public id
    payload = models.JSONField()  # what `access_event_payload` returned, whole
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"pending {self.payload.get('action')} {self.public_id}"


class AccessDrainRequest(models.Model):
    """A drain of the organization's pending events has been asked for and not yet started.

    Recorders enqueue a drain only when they create this row; the drain deletes it before it
    reads what is pending. So one message is in flight per organization however many events
    a burst records, and an event committed after a drain's read always brings a new drain.
    A row orphaned by a lost message is cleared by the every-minute drain.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"drain of {self.organization_id} requested at {self.requested_at}"


class StorageLogSource(models.Model):
    """Where a bucket's S3 server access logs are delivered: a location and a key prefix."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    location = models.ForeignKey(
        StorageLocation, on_delete=models.PROTECT, related_name="log_sources"
    )
    prefix = models.CharField(max_length=1024, help_text="Key prefix of the delivered logs.")
    created_at = models.DateTimeField(auto_now_add=True)
    last_ingested_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "location", "prefix"], name="log_source_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.location} / {self.prefix}"


class StorageLogObject(models.Model):
    """A log object read to its end: skipped by later imports (its lines are in the chain)."""

    source = models.ForeignKey(
        StorageLogSource, on_delete=models.CASCADE, related_name="log_objects"
    )
    key = models.CharField(max_length=1024)
    etag = models.CharField(max_length=200, blank=True)
    lines = models.PositiveIntegerField(default=0)
    events = models.PositiveIntegerField(default=0)
    malformed = models.PositiveIntegerField(default=0)
    ingested_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "key"], name="log_object_once"),
        ]

    def __str__(self) -> str:
        return self.key


# --- obligations, legal holds, deletions, certificates ---


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

    objects = LegalHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-placed_at", "id"]
        indexes = [models.Index(fields=["organization", "client", "released_at"])]

    def __str__(self) -> str:
        return f"legal hold on {self.dataset or self.client}"

    @property
    def is_active(self) -> bool:
        return self.released_at is None


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


class SigningKey(models.Model):
    """The organization's Ed25519 key for certificates and evidence; the private half is
    sealed under the master key."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.PROTECT, related_name="signing_key"
    )
    public_key = models.CharField(max_length=64, help_text="Raw Ed25519 public key, base64.")
    private_sealed = models.BinaryField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"signing key of {self.organization_id}"


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


# --- procurement evidence ---


class ProcurementTokenQuerySet(ClientScopedQuerySet):
    def live(self, now: Any) -> Any:
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class ProcurementToken(models.Model):
    """A read-only token for a client's procurement team: it reads that client's evidence and
    deletion certificates, nothing else. Only its SHA-256 is stored; it always expires."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.ForeignKey(Client, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=100, help_text="Who holds it, e.g. 'ACME procurement'.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ProcurementTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expires_at__gt=models.F("created_at")),
                name="procurement_token_expires_after_creation",
            ),
        ]

    def __str__(self) -> str:
        return f"procurement token {self.name} for {self.client_id}"

    @property
    def label(self) -> str:
        """How the access log names it."""
        return f"procurement-token:{self.public_id}"


class ProcessingRecord(models.Model):
    """The record of processing the agency keeps as a processor for one client (GDPR Art.
    30(2)): who the processor and the controller are, what is processed on the controller's
    behalf, transfers to third countries with their safeguards, and the security measures.
    The processor's and controller's names are the organization's and the client's."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.PROTECT)
    client = models.OneToOneField(
        Client, on_delete=models.PROTECT, related_name="processing_record"
    )
    processor_contact = models.TextField(blank=True, help_text="Address, e-mail, phone.")
    processor_representative = models.CharField(
        max_length=300, blank=True, help_text="Art. 27 representative, where applicable."
    )
    processor_dpo = models.CharField(
        "processor's data protection officer", max_length=300, blank=True
    )
    controller_contact = models.TextField(
        blank=True, help_text="Empty: the client's contact name and e-mail."
    )
    controller_representative = models.CharField(max_length=300, blank=True)
    controller_dpo = models.CharField(
        "controller's data protection officer", max_length=300, blank=True
    )
    # ["storage and backup of training data", "annotation", …]
    processing_categories = models.JSONField(default=list, blank=True)
    # [{"country": "US", "recipient": "…", "safeguard": "standard_contractual_clauses",
    #   "documentation": "SCC module 3, signed 2026-01-10"}]
    transfers = models.JSONField(default=list, blank=True)
    security_measures = models.TextField(
        blank=True,
        help_text="General description of the technical and organisational measures "
        "(Art. 32(1)); the evidence adds what the system itself enforces.",
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = ClientScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"processing record of {self.client_id}"


class AccessChainCheckpoint(models.Model):
    """The last link of an organization's access chain known good, and when the whole chain was
    last walked: evidence reads verify from here (a rewritten chain no longer reaches this
    hash), and walk the whole chain again once a day."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, blank=True)
    walked_at = models.DateTimeField(help_text="When the whole chain was last verified.")
    checked_at = models.DateTimeField()

    objects = TenantQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.organization_id} verified to #{self.seq}"
