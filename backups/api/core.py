"""Backup API core: policies, the dataset's backup fields and actions, runs, snapshots, restores."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django.db import transaction
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backups import selectors, services
from backups.api.exports import ExportUploads
from backups.models import (
    MAX_LOCK_DAYS,
    BackupPolicy,
    BackupRun,
    Frequency,
    LockMode,
    RestoreRun,
    Snapshot,
    StorageClass,
    Trigger,
)
from clients import api as clients_api
from clients.models import Dataset, StorageLocation
from kernel.api import AdminWrites, FlexibleDurationField, TenantViewSet, VisibleRelatedField
from kernel.filters import UtcDateTimeFilter
from kernel.http import request_origin

# --- policies ---


class TargetRetentionSerializer(serializers.Serializer[Any]):
    location = VisibleRelatedField(StorageLocation, help_text="One of the policy's targets.")
    mode = serializers.ChoiceField(choices=LockMode.choices)
    days = serializers.IntegerField(min_value=1, max_value=MAX_LOCK_DAYS)


class PolicySerializer(serializers.ModelSerializer[BackupPolicy]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    frequency = serializers.ChoiceField(choices=Frequency.choices)
    storage_class = serializers.ChoiceField(choices=StorageClass.choices, required=False)
    drill_every = FlexibleDurationField(
        required=False,
        allow_null=True,
        min_value=timedelta(days=1),
        max_value=timedelta(days=366),
        help_text="How often each dataset is restored in a drill (default P91D, quarterly); "
        "null: drills by hand only.",
    )
    targets = serializers.ListField(
        child=VisibleRelatedField(StorageLocation),
        required=False,
        write_only=True,  # written as ids; read back, in order, by to_representation
        max_length=10,
        help_text="Ordered backup targets (storage location ids).",
    )
    target_retention = serializers.ListField(
        child=TargetRetentionSerializer(),
        required=False,
        max_length=10,
        help_text="Object Lock retention per target (S3 buckets with Object Lock): every "
        "object written there is retained `days` days in `mode`, extended while a newer "
        "snapshot needs it. Given, it replaces the retention of every target; targets not "
        "listed ask for none.",
    )

    class Meta:
        model = BackupPolicy
        fields = (
            "id",
            "name",
            "default_for",
            "frequency",
            "time_of_day",
            "keep_last",
            "keep_hourly",
            "keep_daily",
            "keep_weekly",
            "keep_monthly",
            "keep_yearly",
            "keep_forever",
            "storage_class",
            "infrequent_access_after_days",
            "archive_after_days",
            "drill_every",
            "compression_level",
            "next_review_at",
            "targets",
            "target_retention",
            "created_at",
            "updated_at",
        )
        read_only_fields = ("default_for", "next_review_at", "created_at", "updated_at")

    def to_representation(self, instance: BackupPolicy) -> dict[str, Any]:
        data = super().to_representation(instance)
        rows = list(instance.policy_targets.all())
        data["targets"] = [str(t.location.public_id) for t in rows]
        data["target_retention"] = [
            {
                "location": str(t.location.public_id),
                "mode": t.object_lock_mode,
                "days": t.object_lock_days,
            }
            for t in rows
            if t.locked
        ]
        return data


class PolicyViewSet(clients_api._WriteThroughServices):
    """Backup policies: schedule, retention, ordered targets, tiering."""

    serializer_class = PolicySerializer
    extra_permission_classes = (AdminWrites,)
    selector = staticmethod(selectors.policy_list)

    def create_with(self, data: dict[str, Any]) -> BackupPolicy:
        targets = data.pop("targets", [])
        retention = _retention(data.pop("target_retention", None)) or []
        return services.policy_create(
            actor=self.actor, targets=targets, target_retention=retention, **data
        )

    def update_with(self, instance: BackupPolicy, data: dict[str, Any]) -> BackupPolicy:
        targets = data.pop("targets", None)
        retention = _retention(data.pop("target_retention", None))
        return services.policy_update(
            actor=self.actor,
            policy=instance,
            targets=targets,
            target_retention=retention,
            **data,
        )


def _retention(rows: list[dict[str, Any]] | None) -> list[services.TargetRetention] | None:
    if rows is None:
        return None
    return [services.TargetRetention(r["location"], r["mode"], r["days"]) for r in rows]


# --- datasets, with their backup side ---


class SnapshotSerializer(serializers.ModelSerializer[Snapshot]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    dataset = serializers.UUIDField(source="dataset.public_id", read_only=True)
    target = serializers.UUIDField(source="location.public_id", read_only=True)
    target_name = serializers.CharField(source="location.name", read_only=True)
    run = serializers.UUIDField(source="run.public_id", read_only=True, allow_null=True)

    class Meta:
        model = Snapshot
        fields = (
            "id",
            "dataset",
            "target",
            "target_name",
            "run",
            "taken_at",
            "files",
            "bytes",
            "new_bytes",
            "source_meta",
        )
        read_only_fields = fields


class BackupRunSerializer(serializers.ModelSerializer[BackupRun]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    dataset = serializers.UUIDField(source="dataset.public_id", read_only=True)
    targets = serializers.SerializerMethodField()
    snapshots = SnapshotSerializer(many=True, read_only=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    progress_percent = serializers.IntegerField(read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)

    class Meta:
        model = BackupRun
        fields = (
            "id",
            "dataset",
            "trigger",
            "status",
            "targets",
            "requested_by",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "files_seen",
            "bytes_seen",
            "bytes_done",
            "bytes_total",
            "progress_percent",
            "new_bytes",
            "files_reused",
            "skipped_keys",
            "error",
            "snapshots",
        )
        read_only_fields = fields

    def get_targets(self, run: BackupRun) -> list[str]:
        return [str(rt.location.public_id) for rt in run.run_targets.all()]


class ProtectedDatasetSerializer(clients_api.DatasetSerializer):
    """The inventory's dataset plus its backup policy (leads with `manage` may pick another)."""

    policy = VisibleRelatedField(
        BackupPolicy,
        required=False,
        allow_null=True,
        help_text="Backup policy id; null returns the dataset to its kind's default.",
    )
    live_pipeline_input = serializers.BooleanField(required=False)

    class Meta(clients_api.DatasetSerializer.Meta):
        fields = (  # type: ignore[assignment]  # two more than the base
            *clients_api.DatasetSerializer.Meta.fields,
            "policy",
            "live_pipeline_input",
        )

    def to_representation(self, instance: Dataset) -> dict[str, Any]:
        data = super().to_representation(instance)
        protection = getattr(instance, "protection", None)
        data["policy"] = (
            str(protection.policy.public_id) if protection and protection.policy else None
        )
        data["live_pipeline_input"] = bool(protection and protection.live_pipeline_input)
        return data


class DatasetViewSet(ExportUploads, clients_api.DatasetViewSet):
    """Datasets with their backup policy; `POST …/backup/` starts a backup now."""

    serializer_class = ProtectedDatasetSerializer
    selector = staticmethod(selectors.dataset_list_with_protection)

    def _apply_protection(self, dataset: Dataset, data: dict[str, Any]) -> None:
        if "policy" in data or "live_pipeline_input" in data:
            services.dataset_policy_set(
                actor=self.actor,
                dataset=dataset,
                policy=data.get("policy"),
                live_pipeline_input=data.get("live_pipeline_input"),
            )

    @transaction.atomic
    def create_with(self, data: dict[str, Any]) -> Dataset:
        extra = {k: data.pop(k) for k in ("policy", "live_pipeline_input") if k in data}
        dataset = super().create_with(data)
        self._apply_protection(dataset, extra)
        return dataset

    @transaction.atomic
    def update_with(self, instance: Dataset, data: dict[str, Any]) -> Dataset:
        extra = {k: data.pop(k) for k in ("policy", "live_pipeline_input") if k in data}
        # An empty PATCH still goes through the service, so it needs the same grant as an edit.
        dataset = super().update_with(instance, data) if data or not extra else instance
        self._apply_protection(dataset, extra)
        return dataset

    @extend_schema(request=None, responses={202: BackupRunSerializer})
    @action(detail=True, methods=["post"])
    def backup(self, request: Request, id: str) -> Response:  # URL kwarg name
        run = services.backup_run_request(
            actor=self.actor, dataset=self.get_object(), trigger=Trigger.API
        )
        fresh = selectors.backup_run_get(actor=self.actor, public_id=run.public_id)
        return Response(BackupRunSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)


# --- runs, snapshots, restores ---


class BackupRunFilter(django_filters.FilterSet):
    dataset = django_filters.UUIDFilter(field_name="dataset__public_id")

    class Meta:
        model = BackupRun
        fields = ("dataset", "status", "trigger")


class BackupRunViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[BackupRun]):
    """Backup runs with live progress (bytes done / total) and their snapshots."""

    serializer_class = BackupRunSerializer
    selector = staticmethod(selectors.backup_run_list)
    filterset_class = BackupRunFilter


class SnapshotFilter(django_filters.FilterSet):
    dataset = django_filters.UUIDFilter(field_name="dataset__public_id")
    target = django_filters.UUIDFilter(field_name="location__public_id")
    as_of = UtcDateTimeFilter(
        field_name="taken_at",
        lookup_expr="lte",
        label="Only snapshots taken at or before this time (point in time).",
    )

    class Meta:
        model = Snapshot
        fields = ("dataset", "target", "as_of")


class RestoreRequestSerializer(serializers.Serializer[Any]):
    destination_location = VisibleRelatedField(
        StorageLocation,
        required=False,
        help_text="Where to restore; default: the dataset's primary location.",
    )
    destination_path = serializers.CharField(
        required=False,
        max_length=1024,
        help_text="Folder (key prefix) inside the destination location, within the dataset's "
        "client's space there (its folder on a shared location); default: "
        "<client folder>/restores/<dataset>-<time>.",
    )
    path_prefix = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=1024,
        help_text="Restore only this file or directory of the snapshot.",
    )
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="A database restore only: replace the database an earlier restore of this "
        "dataset made (never any other existing database).",
    )
    overwrite = serializers.BooleanField(
        required=False,
        default=True,
        help_text="False: refuse (409) when the destination folder already holds files.",
    )


class RestoreRunSerializer(serializers.ModelSerializer[RestoreRun]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    dataset = serializers.UUIDField(source="dataset.public_id", read_only=True)
    snapshot = serializers.UUIDField(source="snapshot.public_id", read_only=True)
    destination_location = serializers.UUIDField(
        source="destination_location.public_id", read_only=True, allow_null=True
    )
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    retrieval_duration = FlexibleDurationField(
        read_only=True,
        allow_null=True,
        help_text="Waiting for archived content to be retrieved before the restore read it.",
    )
    retrieval_status = serializers.CharField(
        read_only=True,
        help_text='While waiting: "waiting for archive retrieval, N of M objects".',
    )

    class Meta:
        model = RestoreRun
        fields = (
            "id",
            "dataset",
            "snapshot",
            "destination_location",
            "destination_path",
            "path_prefix",
            "is_drill",
            "status",
            "requested_by",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "retrieval_duration",
            "retrieval_status",
            "files",
            "bytes",
            "bytes_done",
            "bytes_total",
            "error",
            "force",
            "outcome",
        )
        read_only_fields = fields


class DownloadQuerySerializer(serializers.Serializer[Any]):
    path = serializers.CharField(max_length=1024, help_text="The file's path in the snapshot.")


class SnapshotViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[Snapshot]):
    """Complete snapshots; `?dataset=&as_of=` lists what existed at a point in time."""

    serializer_class = SnapshotSerializer
    selector = staticmethod(selectors.snapshot_list)
    filterset_class = SnapshotFilter

    @extend_schema(request=RestoreRequestSerializer, responses={202: RestoreRunSerializer})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, id: str) -> Response:  # URL kwarg name
        snapshot = self.get_object()
        body = RestoreRequestSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        dataset = snapshot.dataset
        location = body.validated_data.get("destination_location") or dataset.location
        restore = services.restore_request(
            actor=self.actor,
            snapshot=snapshot,
            destination_location=location,
            destination_path=body.validated_data.get("destination_path")
            or services.restore_default_path(dataset, location),
            path_prefix=body.validated_data.get("path_prefix", ""),
            force=body.validated_data.get("force", False),
            overwrite=body.validated_data.get("overwrite", True),
            origin=request_origin(request),
        )
        fresh = selectors.restore_list(actor=self.actor).get(pk=restore.pk)
        return Response(RestoreRunSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        parameters=[DownloadQuerySerializer],
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, id: str) -> FileResponse:  # URL kwarg
        """One file of the snapshot, checked against its sha256; recorded in the access log."""
        query = DownloadQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        downloaded = services.snapshot_file_download(
            actor=self.actor,
            snapshot=self.get_object(),
            path=query.validated_data["path"],
            origin=request_origin(request),
        )
        response = FileResponse(downloaded.open(), as_attachment=True, filename=downloaded.name)
        response["X-Content-SHA256"] = downloaded.sha256
        return response


class RestoreFilter(django_filters.FilterSet):
    dataset = django_filters.UUIDFilter(field_name="dataset__public_id")

    class Meta:
        model = RestoreRun
        fields = ("dataset", "status", "is_drill")


class RestoreRunViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[RestoreRun]
):
    serializer_class = RestoreRunSerializer
    selector = staticmethod(selectors.restore_list)
    filterset_class = RestoreFilter
