"""Where data lives: storage locations, and each client's folder on a shared one."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from clients.models.clients import Client
from clients.models.organizations import Organization
from kernel.local_roots import OutsideLocalRoots, local_directory_resolve
from kernel.tenancy import TenantQuerySet

if TYPE_CHECKING:
    from kernel.tenancy import Actor


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
    def visible_rows(self, actor: Actor) -> Q:
        # Shared locations are organization infrastructure; a client's dedicated bucket is that
        # client's data and follows its grants.
        return Q(client__isnull=True) | Q(client_id__in=actor.visible_client_ids)


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
    def visible_rows(self, actor: Actor) -> Q:
        # A client's folder is the client's: a grant on one dataset shows that dataset's path,
        # not where the client's other data may go.
        return Q(client_id__in=list(actor.client_levels))


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
