"""Copies of client data the product itself makes: restores, files handed out, drill scratch.

A deletion must reach every copy of a client's data, and its certificate must name them, the
product's own included: each copy a restore, a download or a drill writes is recorded here when
it is written.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from backups.models.core import DatasetScopedQuerySet, RestoreRun, Snapshot
from clients.models import Dataset, Organization, StorageLocation


class CopyKind(models.TextChoices):
    RESTORE = "restore", "Restored into a storage location"
    DIRECTORY = "directory", "Restored by the operator into a directory"
    DOWNLOAD = "download", "File downloaded"
    DRILL = "drill", "Restore drill scratch"
    DATABASE = "database", "Restored into a new database"
    PUSHED = "pushed", "Pushed to a git repository"
    MIRROR = "mirror", "Git mirror cache in a worker's scratch"


class DataCopy(models.Model):
    """One copy the product wrote: what (dataset, snapshot, files, bytes), where (a location and
    a key prefix or folder in it; a directory for the operator's and the drills' copies; the file
    path for a download), who, when, and when it was removed (a drill's scratch at once, a
    restored copy by a deletion). A download cannot be recalled: it is named, never removed."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE)
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="copies")
    snapshot = models.ForeignKey(Snapshot, on_delete=models.PROTECT, related_name="copies")
    kind = models.CharField(max_length=16, choices=CopyKind.choices)
    restore = models.OneToOneField(
        RestoreRun, null=True, blank=True, on_delete=models.CASCADE, related_name="copy"
    )
    location = models.ForeignKey(
        StorageLocation, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    path = models.CharField(
        max_length=1024,
        help_text="Folder or key prefix inside the location; the directory (operator, drill); "
        "the file (download).",
    )
    files = models.PositiveIntegerField(default=0)
    bytes = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True, help_text="A downloaded file's sha256.")
    made_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    made_at = models.DateTimeField()
    removed_at = models.DateTimeField(null=True, blank=True)
    removal = models.CharField(max_length=300, blank=True, help_text="How it was removed.")

    objects = DatasetScopedQuerySet["DataCopy"].as_manager()

    class Meta:
        ordering = ["made_at", "id"]
        verbose_name_plural = "data copies"
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=[k.value for k in CopyKind]), name="data_copy_kind_valid"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["restore", "database", "pushed"])
                | Q(location__isnull=False),
                name="data_copy_restore_has_location",
            ),
        ]
        indexes = [models.Index(fields=["organization", "dataset", "kind"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.dataset_id} at {self.path}"
