"""What tells the agency its backups are real: bucket posture, alerts and their deliveries,
reviews, notification settings and the storage price table. Evaluations that need no history
(3-2-1, cost) are computed from these and the run records, never stored."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from backups.models.core import BackupPolicy
from clients.models import Client, Dataset, Organization, Provider, StorageLocation
from kernel.tenancy import Actor, TenantQuerySet, grant_filter


class Severity(models.TextChoices):
    CRITICAL = "critical", "Critical"
    HIGH = "high", "High"
    MEDIUM = "medium", "Medium"
    LOW = "low", "Low"
    INFO = "info", "Info"


SEVERITY_RANK = {
    Severity.CRITICAL: 0,
    Severity.HIGH: 1,
    Severity.MEDIUM: 2,
    Severity.LOW: 3,
    Severity.INFO: 4,
}


class PostureCheck(models.TextChoices):
    REACHABLE = "reachable", "Bucket reachable"
    VERSIONING = "versioning", "Versioning"
    MFA_DELETE = "mfa_delete", "MFA delete"
    OBJECT_LOCK = "object_lock", "Object lock"
    REPLICATION = "replication", "Replication"
    LIFECYCLE = "lifecycle", "Lifecycle rules"
    ENCRYPTION = "encryption", "Default encryption"
    PUBLIC_ACCESS_BLOCK = "public_access_block", "Public access block"
    LOGGING = "logging", "Access logging"


class FixAction(models.TextChoices):
    ENABLE_VERSIONING = "enable_versioning", "Enable versioning"
    APPLY_LIFECYCLE = "apply_lifecycle", "Apply the policy's tiering as lifecycle rules"
    ENABLE_LOGGING = "enable_logging", "Enable access logging to a log prefix"


class AuditTrigger(models.TextChoices):
    SCHEDULED = "scheduled", "Daily audit"
    MANUAL = "manual", "On demand"
    AFTER_FIX = "after_fix", "After a fix"


class LocationScopedQuerySet(TenantQuerySet["models.Model"]):
    """Rows about a storage location: visible like the location (shared locations to everyone in
    the organization, a client's dedicated location only with a grant on that client)."""

    def visible_rows(self, actor: Actor) -> Q:
        return Q(location__client__isnull=True) | Q(
            location__client_id__in=actor.visible_client_ids
        )


class PostureAudit(models.Model):
    """One reading of a location's protection settings, as the storage service reported them."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    location = models.ForeignKey(
        StorageLocation, on_delete=models.CASCADE, related_name="posture_audits"
    )
    audited_at = models.DateTimeField(default=timezone.now)
    trigger = models.CharField(max_length=16, choices=AuditTrigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reachable = models.BooleanField(default=True)
    error = models.TextField(blank=True)
    # What the service answered, check by check ({"versioning": "Enabled", "lifecycle": [...]}),
    # so a finding can always be traced to the reading it came from.
    facts = models.JSONField(default=dict, blank=True)

    objects = LocationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-audited_at", "-id"]
        indexes = [models.Index(fields=["organization", "location", "-audited_at"])]

    def __str__(self) -> str:
        return f"posture of {self.location} at {self.audited_at:%Y-%m-%d %H:%M}"


class PostureFinding(models.Model):
    """A protection a location lacks, with how bad that is and the fix the system can apply."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    audit = models.ForeignKey(PostureAudit, on_delete=models.CASCADE, related_name="findings")
    location = models.ForeignKey(StorageLocation, on_delete=models.CASCADE, related_name="+")
    check_name = models.CharField(max_length=24, choices=PostureCheck.choices)
    severity = models.CharField(max_length=8, choices=Severity.choices)
    message = models.TextField()
    fix_action = models.CharField(max_length=24, choices=FixAction.choices, blank=True)

    objects = LocationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["audit", "check_name"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "audit", "check_name"], name="one_finding_per_check"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class PostureFix(models.Model):
    """An admin's change to a bucket's settings, kept whether it worked or not."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    location = models.ForeignKey(StorageLocation, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=24, choices=FixAction.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    succeeded = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    # The configuration sent (lifecycle rules, log target), never credentials.
    details = models.JSONField(default=dict, blank=True)

    objects = LocationScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_action_display()} on {self.location}"


class AlertKind(models.TextChoices):
    BACKUP_FAILED = "backup_failed", "Backup failed"
    RPO_MISSED = "rpo_missed", "Recovery point objective missed"
    DRILL_FAILED = "drill_failed", "Restore drill failed"
    DRILL_SLOW = "drill_slow", "Restore drill slower than the RTO"
    DRILL_OVERDUE = "drill_overdue", "Restore drill overdue"
    POSTURE_REGRESSION = "posture_regression", "Storage protection weakened"
    REVIEW_DUE = "review_due", "Review due"
    DELETION_AWAITING = "deletion_awaiting", "Deletion awaiting approval"


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RESOLVED = "resolved", "Resolved"


class AlertQuerySet(TenantQuerySet["Alert"]):
    """Alerts about a client follow that client's grants; organization-wide alerts (a shared
    bucket's posture, a policy review) are for those who see the whole organization."""

    client_path = "client_id"
    dataset_path = "dataset_id"

    def unresolved(self) -> AlertQuerySet:
        return self.exclude(state=AlertState.RESOLVED)


class Alert(models.Model):
    """One incident: opened once, notified once, resolved once. A repeat of the same incident
    (same `incident_key`) only counts another occurrence on the open alert."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    # Names the incident, e.g. "backup_failed:<dataset uuid>:<location uuid>".
    incident_key = models.CharField(max_length=300)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    severity = models.CharField(max_length=8, choices=Severity.choices, default=Severity.HIGH)
    title = models.CharField(max_length=300)
    message = models.TextField()
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    dataset = models.ForeignKey(
        Dataset, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    location = models.ForeignKey(
        StorageLocation, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    policy = models.ForeignKey(
        BackupPolicy, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    opened_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    occurrences = models.PositiveIntegerField(default=1)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    acknowledgement_note = models.TextField(blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(blank=True)

    objects = AlertQuerySet.as_manager()

    class Meta:
        ordering = ["-opened_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "incident_key"],
                condition=~Q(state="resolved"),
                name="one_unresolved_alert_per_incident",
            ),
            models.CheckConstraint(
                condition=Q(state__in=[s.value for s in AlertState]), name="alert_state_valid"
            ),
        ]
        indexes = [models.Index(fields=["organization", "state", "-opened_at"])]

    def __str__(self) -> str:
        return self.title


class DeliveryChannel(models.TextChoices):
    EMAIL = "email", "E-mail"
    WEBHOOK = "webhook", "Webhook"


class DeliveryEvent(models.TextChoices):
    OPENED = "opened", "Opened"
    RESOLVED = "resolved", "Resolved"


class AlertDelivery(models.Model):
    """A notice sent (or tried) about an alert: at most one per channel and event, so a retried
    task never sends the same notice twice."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.CharField(max_length=8, choices=DeliveryChannel.choices)
    event = models.CharField(max_length=8, choices=DeliveryEvent.choices)
    recipients = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alert", "channel", "event"], name="one_delivery_per_channel_and_event"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.event} for {self.alert}"


class NotificationSettings(models.Model):
    """Where an organization's alerts go besides the dataset owner and the admins' e-mail."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.OneToOneField(
        Organization, on_delete=models.CASCADE, related_name="notification_settings"
    )
    email_enabled = models.BooleanField(default=True)
    # The webhook URL usually carries its own secret (chat tools put a token in the path), so it
    # is sealed under the master key like storage credentials and never returned.
    webhook_url_sealed = models.BinaryField(null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet["NotificationSettings"].as_manager()

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self) -> str:
        return f"notifications of {self.organization}"

    @property
    def has_webhook(self) -> bool:
        return bool(self.webhook_url_sealed)


class ReviewSubject(models.TextChoices):
    CLIENT = "client", "Client"
    POLICY = "policy", "Backup policy"


class ReviewQuerySet(TenantQuerySet["Review"]):
    """Reviews of policies are organization-wide, like the policies; a client's review follows
    that client's grants (`grant_filter`)."""

    def visible_rows(self, actor: Actor) -> Q:
        # Organization-wide reviews (of a policy) for every member; a client's under its grants.
        return Q(client__isnull=True) | grant_filter(actor, client="client_id", dataset=None)


class Review(models.Model):
    """Someone looked at a client's (or a policy's) protection and said it still fits."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    subject = models.CharField(max_length=8, choices=ReviewSubject.choices)
    client = models.ForeignKey(
        Client, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    policy = models.ForeignKey(
        BackupPolicy, null=True, blank=True, on_delete=models.CASCADE, related_name="reviews"
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(default=timezone.now)
    note = models.TextField(blank=True)
    next_review_at = models.DateTimeField()

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["-reviewed_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(subject="client", client__isnull=False, policy__isnull=True))
                | Q(subject="policy", policy__isnull=False, client__isnull=True),
                name="review_has_one_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"review of {self.client or self.policy} on {self.reviewed_at:%Y-%m-%d}"


class StoragePrice(models.Model):
    """An organization's price for a GB-month in one provider's storage class; absent rows fall
    back to the AGENCYOPS_STORAGE_PRICES setting."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    storage_class = models.CharField(max_length=16)
    usd_per_gb_month = models.DecimalField(
        max_digits=10, decimal_places=6, validators=[MinValueValidator(Decimal(0))]
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet["StoragePrice"].as_manager()

    class Meta:
        ordering = ["provider", "storage_class"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "provider", "storage_class"], name="one_price_per_class"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider} {self.storage_class}: ${self.usd_per_gb_month}/GB-month"
