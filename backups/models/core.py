"""Backup policies, dataset keys, runs, snapshots and restores."""

from __future__ import annotations

import uuid
from datetime import time, timedelta
from typing import Generic, TypeVar

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from clients.models import Dataset, Organization, StorageLocation, default_next_review
from kernel.tenancy import TenantQuerySet

_M = TypeVar("_M", bound=models.Model)
UNLIMITED = -1  # a keep_* value of -1 keeps every bucket, like restic's "unlimited"
DEFAULT_DRILL_EVERY = timedelta(days=91)  # quarterly


class Frequency(models.TextChoices):
    CONTINUOUS = "continuous", "Continuous (every 15 minutes)"
    HOURLY = "hourly", "Hourly"
    DAILY = "daily", "Daily"
    WEEKLY = "weekly", "Weekly"
    MONTHLY = "monthly", "Monthly"


class DefaultFor(models.TextChoices):
    """Which built-in default a policy is; empty for policies admins create."""

    CONTINUOUS = "continuous", "Code and live pipeline inputs"
    RECORDS = "records", "Business records"
    DAILY = "daily", "Active client data"
    WEEKLY = "weekly", "Completed models and infrastructure config"
    MONTHLY = "monthly", "Archived data"


class StorageClass(models.TextChoices):
    STANDARD = "STANDARD", "Standard"
    STANDARD_IA = "STANDARD_IA", "Infrequent access"
    GLACIER_IR = "GLACIER_IR", "Archive (instant retrieval)"
    # These two are read only after a retrieval (hours): restores wait for it (services/archive).
    GLACIER = "GLACIER", "Archive (flexible retrieval)"
    DEEP_ARCHIVE = "DEEP_ARCHIVE", "Deep archive"


def _keep(help_text: str) -> models.IntegerField[int, int]:
    return models.IntegerField(
        default=0,
        validators=[MinValueValidator(UNLIMITED), MaxValueValidator(100_000)],
        help_text=help_text + " (-1: unlimited).",
    )


class BackupPolicy(models.Model):
    """How often a dataset is copied, where to, and which snapshots are kept."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)
    default_for = models.CharField(max_length=16, choices=DefaultFor.choices, blank=True)
    frequency = models.CharField(max_length=16, choices=Frequency.choices)
    time_of_day = models.TimeField(
        default=time(2, 0), help_text="UTC start time for daily, weekly and monthly backups."
    )
    keep_last = _keep("Most recent snapshots to keep")
    keep_hourly = _keep("Hours with a snapshot to keep")
    keep_daily = _keep("Days with a snapshot to keep")
    keep_weekly = _keep("Weeks with a snapshot to keep")
    keep_monthly = _keep("Months with a snapshot to keep")
    keep_yearly = _keep("Years with a snapshot to keep")
    keep_forever = models.BooleanField(default=False, help_text="Never prune any snapshot.")
    storage_class = models.CharField(
        max_length=16, choices=StorageClass.choices, default=StorageClass.STANDARD
    )
    infrequent_access_after_days = models.PositiveIntegerField(null=True, blank=True)
    archive_after_days = models.PositiveIntegerField(null=True, blank=True)
    compression_level = models.PositiveSmallIntegerField(
        default=3,
        validators=[MaxValueValidator(22)],
        help_text="zstd level for new chunks (0: store raw, 1-22; 3 is zstd's default).",
    )
    drill_every = models.DurationField(
        null=True,
        blank=True,
        default=DEFAULT_DRILL_EVERY,
        help_text="How often each dataset is restored in a drill; empty: drills by hand only.",
    )
    next_review_at = models.DateTimeField(
        default=default_next_review,
        help_text="When someone must next confirm this policy still fits its datasets.",
    )
    targets: models.ManyToManyField[StorageLocation, PolicyTarget] = models.ManyToManyField(
        StorageLocation, through="PolicyTarget", related_name="policies", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TenantQuerySet["BackupPolicy"].as_manager()

    class Meta:
        ordering = ["name", "id"]
        verbose_name_plural = "backup policies"
        constraints = [
            models.UniqueConstraint(fields=["organization", "name"], name="policy_name_per_org"),
            models.UniqueConstraint(
                fields=["organization", "default_for"],
                condition=~Q(default_for=""),
                name="one_default_policy_per_kind_per_org",
            ),
            models.CheckConstraint(
                condition=Q(frequency__in=[f.value for f in Frequency]),
                name="policy_frequency_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def retention_summary(self) -> str:
        """ "last 8 · 30 daily · all monthly" — what pruning keeps, in words."""
        if self.keep_forever:
            return "every snapshot"
        parts = []
        for count, label in (
            (self.keep_last, "last"),
            (self.keep_hourly, "hourly"),
            (self.keep_daily, "daily"),
            (self.keep_weekly, "weekly"),
            (self.keep_monthly, "monthly"),
            (self.keep_yearly, "yearly"),
        ):
            if count == UNLIMITED:
                parts.append(f"all {label}")
            elif count and label == "last":
                parts.append(f"last {count}")
            elif count:
                parts.append(f"{count} {label}")
        return " · ".join(parts) or "every snapshot (no rule set)"


class LockMode(models.TextChoices):
    """S3 Object Lock modes: governance can be lifted by a principal allowed to bypass it,
    compliance by nobody until the date passes."""

    GOVERNANCE = "GOVERNANCE", "Governance"
    COMPLIANCE = "COMPLIANCE", "Compliance"


MAX_LOCK_DAYS = 36_500


class PolicyTarget(models.Model):
    """One ordered backup target of a policy, and the Object Lock retention it asks for."""

    policy = models.ForeignKey(
        BackupPolicy, on_delete=models.CASCADE, related_name="policy_targets"
    )
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    object_lock_mode = models.CharField(max_length=16, choices=LockMode.choices, blank=True)
    object_lock_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LOCK_DAYS)],
        help_text="Every object written is retained this many days, extended while a newer "
        "snapshot still needs it.",
    )

    class Meta:
        ordering = ["policy", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "location"], name="policy_target_once"),
            models.CheckConstraint(
                condition=Q(object_lock_mode="", object_lock_days__isnull=True)
                | (~Q(object_lock_mode="") & Q(object_lock_days__gte=1)),
                name="policy_target_lock_complete",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy} → {self.location}"

    @property
    def locked(self) -> bool:
        return bool(self.object_lock_mode)


class ProtectionQuerySet(TenantQuerySet["DatasetProtection"]):
    client_path = "dataset__client_id"
    dataset_path = "dataset_id"


class DatasetProtection(models.Model):
    """The backup side of a dataset: its policy, its key, whether pruning is suspended."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    dataset = models.OneToOneField(Dataset, on_delete=models.CASCADE, related_name="protection")
    policy = models.ForeignKey(
        BackupPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="protections"
    )
    policy_pinned = models.BooleanField(
        default=False, help_text="A person chose the policy; state changes keep it."
    )
    live_pipeline_input = models.BooleanField(
        default=False, help_text="A live input of a client pipeline: backed up continuously."
    )
    pruning_suspended = models.BooleanField(
        default=False, help_text="Set while a legal hold covers the dataset."
    )
    # The dataset's AES-256 data key, wrapped by the master key. Emptied when crypto-shredded.
    wrapped_key = models.BinaryField(null=True, blank=True, editable=False)
    # A second random key, wrapped by the master key, that wraps the data key's copy on targets
    # with Object Lock: that copy outlives a deletion for as long as the lock, so it must not
    # open with the master key alone. Only here (and in self-backups); emptied with wrapped_key.
    lock_wrapping_key = models.BinaryField(null=True, blank=True, editable=False)
    key_destroyed_at = models.DateTimeField(null=True, blank=True)

    objects = ProtectionQuerySet.as_manager()

    def __str__(self) -> str:
        return f"protection of {self.dataset}"


class BackupSchedule(models.Model):
    """When the next copy of one dataset to one target is due."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="schedules")
    location = models.ForeignKey(StorageLocation, on_delete=models.CASCADE, related_name="+")
    next_due_at = models.DateTimeField()
    last_success_at = models.DateTimeField(null=True, blank=True)

    objects = TenantQuerySet["BackupSchedule"].as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "dataset", "location"], name="one_schedule_per_pair"
            ),
        ]
        indexes = [models.Index(fields=["next_due_at"], name="schedule_due_idx")]

    def __str__(self) -> str:
        return f"{self.dataset} → {self.location} at {self.next_due_at:%Y-%m-%d %H:%M}"


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


ACTIVE_RUN_STATES = (RunStatus.PENDING, RunStatus.RUNNING)


class Trigger(models.TextChoices):
    SCHEDULE = "schedule", "Schedule"
    MANUAL = "manual", "Manual"
    API = "api", "API"
    COMMAND = "command", "Command line"
    EXPORT = "export", "Export uploaded"


class DatasetScopedQuerySet(TenantQuerySet[_M], Generic[_M]):
    """Rows of one dataset: visible with a grant on its client or on the dataset."""

    client_path = "dataset__client_id"
    dataset_path = "dataset_id"


class WorkRecord(models.Model):
    """What every unit of worker-run work records: state, attempts, timing, a heartbeat while a
    worker holds it, byte progress and the error a person reads. The claim and recovery rules
    that use these fields live in backups.services.runs."""

    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Written every second by the worker carrying the run: a stale heartbeat means it died.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    bytes_total = models.BigIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        abstract = True

    @property
    def progress_percent(self) -> int:
        if self.status == RunStatus.SUCCEEDED:
            return 100
        if not self.bytes_total:
            return 0
        return min(100, int(self.bytes_done * 100 / self.bytes_total))

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class BackupRun(WorkRecord):
    """One backup of a dataset to one or more targets."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="backup_runs")
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    files_seen = models.PositiveIntegerField(default=0)
    bytes_seen = models.BigIntegerField(default=0)
    new_bytes = models.BigIntegerField(default=0)
    files_reused = models.PositiveIntegerField(default=0)
    # Source keys no file system could hold safely ('..', absolute, empty parts): not backed up,
    # and named here so nobody believes they were.
    skipped_keys = models.JSONField(default=list, blank=True)

    objects = DatasetScopedQuerySet["BackupRun"].as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["organization", "dataset", "-created_at"]),
            models.Index(fields=["status", "created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in RunStatus]), name="run_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"backup of {self.dataset} ({self.status})"


class RunTarget(models.Model):
    """A target of a run. `active` rows are unique per (dataset, location): runs of the same
    pair never overlap, enforced by the database."""

    run = models.ForeignKey(BackupRun, on_delete=models.CASCADE, related_name="run_targets")
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["run", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "location"],
                condition=Q(active=True),
                name="one_active_run_per_pair",
            ),
            models.UniqueConstraint(fields=["run", "location"], name="run_target_once"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id} → {self.location_id}"


class Snapshot(models.Model):
    """A complete, restorable copy of a dataset on one target. Recorded only after the
    manifest is stored: a row here means every chunk it names was written first."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="snapshots")
    location = models.ForeignKey(StorageLocation, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(
        BackupRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="snapshots"
    )
    manifest_id = models.CharField(max_length=100)
    taken_at = models.DateTimeField()
    files = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    new_bytes = models.BigIntegerField(default=0)
    forgotten_at = models.DateTimeField(null=True, blank=True)
    # On a target with Object Lock: every object this snapshot needs is retained at least
    # until then (the next backup extends the repository's retention from this mark).
    retained_until = models.DateTimeField(null=True, blank=True)
    # What the source said of itself when it was read (a git repository's refs and fsck, a
    # database's server version, dump format and row count per table); also stored inside the
    # snapshot as agencyops-source.json, so it survives the database.
    source_meta = models.JSONField(default=dict, blank=True)

    objects = DatasetScopedQuerySet["Snapshot"].as_manager()

    class Meta:
        ordering = ["-taken_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "location", "manifest_id"], name="snapshot_once_per_target"
            ),
        ]
        indexes = [models.Index(fields=["organization", "dataset", "-taken_at"])]

    def __str__(self) -> str:
        return f"{self.dataset} @ {self.taken_at:%Y-%m-%d %H:%M} on {self.location}"


class DrillScenario(models.TextChoices):
    """The restore tests the agency guide names, and the scheduled random pick."""

    RANDOM = "random", "A random complete snapshot"
    FILE_AT_DATE = "file_at_date", "A single file from a specific date"
    PROJECT_AS_OF = "project_as_of", "A whole client project as of a week ago"
    DATABASE_POINT_IN_TIME = "database_point_in_time", "A database at a point in time"
    REPOSITORY_AFTER_DELETION = "repository_after_deletion", "A repository after a deletion"


class RestoreRun(WorkRecord):
    """A restore of a snapshot (or part of it) to a local directory or an S3 prefix."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="restores")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="restores")
    destination_location = models.ForeignKey(
        StorageLocation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    destination_path = models.CharField(
        max_length=1024, help_text="Directory (local) or key prefix inside the destination."
    )
    path_prefix = models.CharField(max_length=1024, blank=True)
    is_drill = models.BooleanField(default=False)
    scenario = models.CharField(
        max_length=32, choices=DrillScenario.choices, blank=True, help_text="A drill's scenario."
    )
    # A database restore into a database that exists: only one this dataset's own earlier
    # restore made (checked when it is requested), dropped and made again.
    force = models.BooleanField(default=False)
    # A restore of a git repository or a database: what it made and what was checked (refs,
    # row counts per table), beside the files the engine restored.
    outcome = models.JSONField(default=dict, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    files = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    # Drill record: what was checked, how long it took against the RTO, how old the recovery
    # point was against the RPO, and who looked at the result.
    files_verified = models.PositiveIntegerField(default=0)
    # Without the archive retrieval, which is kept apart (its tier, not the restore, sets it);
    # the RTO is compared with their sum.
    measured_duration = models.DurationField(null=True, blank=True)
    retrieval_duration = models.DurationField(
        null=True, blank=True, help_text="Waiting for archived content to be retrieved."
    )
    # What the run waits for while it retrieves archived content, then how that went.
    retrieval_status = models.CharField(max_length=255, blank=True)
    rto = models.DurationField("RTO", null=True, blank=True)
    rto_met = models.BooleanField(null=True, blank=True)
    recovery_point_age = models.DurationField(null=True, blank=True)
    rpo = models.DurationField("RPO", null=True, blank=True)
    rpo_met = models.BooleanField(null=True, blank=True)
    issues = models.JSONField(default=list, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_note = models.TextField(blank=True)

    objects = DatasetScopedQuerySet["RestoreRun"].as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"restore of {self.snapshot} ({self.status})"
