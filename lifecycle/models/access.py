"""The access log, hash-chained per organization: its events, the chain's head and
checkpoint, the outbox of events not yet chained, and the storage logs imported into it."""

from __future__ import annotations

import uuid
from typing import Any, NoReturn

from django.conf import settings
from django.db import models
from django.db.models import Q

from clients.models import Client, Dataset, Organization, StorageLocation
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
