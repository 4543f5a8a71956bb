"""Datasets: one body of client data the agency holds, and the promises attached to it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from clients.models.clients import Client, Engagement
from clients.models.organizations import Organization
from clients.models.storage import StorageLocation
from kernel.tenancy import TenantQuerySet


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


DEFAULT_RPO = timedelta(hours=24)
DEFAULT_RTO = timedelta(hours=8)
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
        default=DEFAULT_RPO,
        validators=[MinValueValidator(MIN_DURATION), MaxValueValidator(MAX_RPO)],
        help_text="Most data, in time, the client accepts to lose.",
    )
    rto = models.DurationField(
        "RTO",
        default=DEFAULT_RTO,
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
