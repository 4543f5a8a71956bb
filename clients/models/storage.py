"""Where data lives: storage locations, and each client's folder on a shared one."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from clients.models.clients import Client
from clients.models.organizations import Organization
from kernel.local_roots import OutsideLocalRoots, local_directory_resolve
from kernel.sources import SourceNameInvalid, database_server_check, git_base_check
from kernel.tenancy import TenantQuerySet

if TYPE_CHECKING:
    from kernel.tenancy import Actor


class LocationKind(models.TextChoices):
    S3 = "s3", "S3-compatible bucket"
    LOCAL = "local", "Local directory"
    GIT = "git", "Git host"
    POSTGRES = "postgres", "PostgreSQL server"
    MYSQL = "mysql", "MySQL/MariaDB server"
    SAAS = "saas", "SaaS tool (exports)"


# Where backups and restores go (object stores) and where they only come from.
STORE_KINDS = (LocationKind.S3, LocationKind.LOCAL)
DATABASE_KINDS = (LocationKind.POSTGRES, LocationKind.MYSQL)
# Read by another program (git, pg_dump, mariadb-dump): never a backup target.
SOURCE_KINDS = (LocationKind.GIT, *DATABASE_KINDS)


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
    # git hosts
    GITHUB = "github", "GitHub"
    GITLAB = "gitlab", "GitLab"
    BITBUCKET = "bitbucket", "Bitbucket"
    GIT_SERVER = "git_server", "Git server (self-hosted)"
    # database servers
    DATABASE_SERVER = "database_server", "Database server (self-hosted)"
    AWS_RDS = "aws_rds", "Amazon RDS"
    GOOGLE_CLOUD_SQL = "google_cloud_sql", "Google Cloud SQL"
    AZURE_DATABASE = "azure_database", "Azure Database"
    # SaaS tools: their data is exported, never read through an API connector
    NOTION = "notion", "Notion"
    SLACK = "slack", "Slack"
    GOOGLE_WORKSPACE = "google_workspace", "Google Workspace"
    LINEAR = "linear", "Linear"
    GITHUB_ISSUES = "github_issues", "GitHub issues and wikis"
    OTHER_SAAS = "other_saas", "Other SaaS tool"


PROVIDERS_BY_KIND: dict[str, tuple[str, ...]] = {
    "s3": ("aws", "gcs", "azure", "backblaze", "wasabi", "minio", "ceph", "other"),
    "local": ("filesystem",),
    "git": ("github", "gitlab", "bitbucket", "git_server", "other"),
    "postgres": ("database_server", "aws_rds", "google_cloud_sql", "azure_database", "other"),
    "mysql": ("database_server", "aws_rds", "google_cloud_sql", "azure_database", "other"),
    "saas": ("notion", "slack", "google_workspace", "linear", "github_issues", "other_saas"),
}


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
    # An S3 endpoint (http/https), a git base (https, ssh, git, file), a database server
    # (postgresql://host:port, mysql://host:port), a SaaS workspace (shown, never connected to).
    endpoint_url = models.CharField(max_length=500, blank=True)
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
                | (Q(kind="s3") & ~Q(bucket="") & ~Q(provider="filesystem"))
                | (
                    Q(kind__in=["git", "postgres", "mysql", "saas"], bucket="")
                    & ~Q(provider="filesystem")
                ),
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
        if self.kind != LocationKind.S3:
            return "stored" if self.credentials_sealed else "none"
        return "stored" if self.credentials_sealed else "ambient"

    @property
    def is_store(self) -> bool:
        """Whether backups and restores can be written here (a bucket or a directory)."""
        return self.kind in STORE_KINDS

    @property
    def display_uri(self) -> str:
        if self.kind == LocationKind.LOCAL:
            return f"file://{self.prefix}"
        if self.kind not in STORE_KINDS:
            return self.endpoint_url or self.get_kind_display()
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
        else:
            errors.update(self._clean_source())
        if errors:
            raise ValidationError(errors)

    def _clean_source(self) -> dict[str, str]:
        """A git host, a database server or a SaaS tool: the URL's shape (kernel.sources; the
        egress policy is the service's), a provider of its kind, no bucket, no prefix; a file://
        git base lies in the organization's folder of a local root, like a local directory."""
        errors: dict[str, str] = {}
        if self.provider not in PROVIDERS_BY_KIND.get(self.kind, ()):
            allowed = ", ".join(PROVIDERS_BY_KIND.get(self.kind, ()))
            errors["provider"] = (
                f"A {self.get_kind_display()} location's provider is one of {allowed}."
            )
        if self.bucket:
            errors["bucket"] = "Only an S3 location has a bucket."
        if self.prefix:
            errors["prefix"] = "Only buckets and directories have a prefix; put it in the URL."
        if self.kind == LocationKind.SAAS:
            if self.endpoint_url and not self.endpoint_url.startswith("https://"):
                errors["endpoint_url"] = "The workspace address is an https:// URL (or empty)."
            return errors
        try:
            if self.kind == LocationKind.GIT:
                scheme, _host, _port = git_base_check(self.endpoint_url)
                if scheme == "file" and self.organization_id is not None:
                    self.endpoint_url = self._git_file_base()
            else:
                database_server_check(self.kind, self.endpoint_url)
                if self.client_id is None:
                    errors["client"] = (
                        "A database server location is dedicated to one client: its databases "
                        "are named by the client's datasets, with no folder to keep clients apart."
                    )
        except (SourceNameInvalid, OutsideLocalRoots) as exc:
            errors["endpoint_url"] = str(exc)
        return errors

    def _git_file_base(self) -> str:
        directory = local_directory_resolve(
            urlsplit(self.endpoint_url).path,
            roots=settings.AGENCYOPS_LOCAL_ROOTS,
            slug=self.organization.slug,
        )
        return f"file://{directory}/"


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
