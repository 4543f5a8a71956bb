"""Restore drills API: list and read drills (client grants apply), start one by hand and record
a review (owners and admins). A drill is a restore of a random complete snapshot into scratch,
with its measurements: files verified, time vs RTO, recovery point age vs RPO, issues."""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from backups.models import DrillScenario, RestoreRun, RunStatus, Snapshot
from backups.selectors import drill_list
from backups.services.drills import (
    REVIEW_NOTE_MAX,
    drill_project_start,
    drill_review,
    drill_scenario_start,
    drill_start,
)
from clients.models import Client, Dataset
from kernel.api import AdminWrites, FlexibleDurationField, TenantViewSet, VisibleRelatedField
from kernel.http import request_origin


class DrillSnapshotSerializer(serializers.ModelSerializer[Snapshot]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    location = serializers.UUIDField(source="location.public_id", read_only=True)
    location_name = serializers.CharField(source="location.name", read_only=True)

    class Meta:
        model = Snapshot
        fields = ("id", "taken_at", "location", "location_name", "files", "bytes")
        read_only_fields = fields


class DrillSerializer(serializers.ModelSerializer[RestoreRun]):
    id = serializers.UUIDField(source="public_id", read_only=True)
    dataset = serializers.UUIDField(source="dataset.public_id", read_only=True)
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    snapshot = DrillSnapshotSerializer(read_only=True)
    destination = serializers.CharField(
        source="destination_path",
        read_only=True,
        help_text="The scratch directory the drill restored into (deleted when it ended).",
    )
    measured_duration = FlexibleDurationField(
        read_only=True,
        allow_null=True,
        help_text="Start to verified copy (ISO 8601), without the archive retrieval.",
    )
    retrieval_duration = FlexibleDurationField(
        read_only=True,
        allow_null=True,
        help_text="Waiting for archived content to be retrieved first; null: none needed. "
        "rto_met compares the sum of both with the RTO.",
    )
    rto = FlexibleDurationField(read_only=True, allow_null=True)
    recovery_point_age = FlexibleDurationField(
        read_only=True, allow_null=True, help_text="Age of the restored snapshot at the start."
    )
    rpo = FlexibleDurationField(read_only=True, allow_null=True)
    issues = serializers.ListField(child=serializers.CharField(), read_only=True)
    requested_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, help_text="Empty for scheduled drills."
    )
    reviewed_by: serializers.SlugRelatedField[Any] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )

    class Meta:
        model = RestoreRun
        fields = (
            "id",
            "dataset",
            "dataset_name",
            "snapshot",
            "destination",
            "scenario",
            "path_prefix",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "files",
            "files_verified",
            "bytes",
            "measured_duration",
            "retrieval_duration",
            "retrieval_status",
            "rto",
            "rto_met",
            "recovery_point_age",
            "rpo",
            "rpo_met",
            "issues",
            "error",
            "requested_by",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        )
        read_only_fields = fields


class DrillFilter(django_filters.FilterSet):
    dataset = django_filters.UUIDFilter(field_name="dataset__public_id")
    client = django_filters.UUIDFilter(field_name="dataset__client__public_id")
    result = django_filters.ChoiceFilter(field_name="status", choices=RunStatus.choices)

    class Meta:
        model = RestoreRun
        fields = ("dataset", "client", "result")


class DrillStartSerializer(serializers.Serializer[Any]):
    dataset = VisibleRelatedField(Dataset, help_text="The dataset to drill.")
    snapshot = VisibleRelatedField(
        Snapshot,
        required=False,
        help_text="A complete snapshot of the dataset; default: one picked at random.",
    )
    scenario = serializers.ChoiceField(
        choices=[c for c in DrillScenario.choices if c[0] != DrillScenario.PROJECT_AS_OF],
        required=False,
        default=DrillScenario.RANDOM,
        help_text="One of the guide's restore tests (a whole project: POST …/drills/project/).",
    )
    as_of = serializers.DateTimeField(
        required=False, help_text="file_at_date, database_point_in_time: the point in time."
    )
    path = serializers.CharField(
        required=False, max_length=1024, help_text="file_at_date: the file's path."
    )


class DrillProjectSerializer(serializers.Serializer[Any]):
    client = VisibleRelatedField(Client, help_text="The client whose project is drilled.")
    as_of = serializers.DateTimeField(
        required=False, help_text="Default: seven days ago (the guide's test)."
    )


class DrillReviewSerializer(serializers.Serializer[Any]):
    note = serializers.CharField(
        max_length=REVIEW_NOTE_MAX,
        allow_blank=True,
        required=False,
        default="",
        help_text="What the reviewer concluded.",
    )


class DrillViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[RestoreRun]):
    """Restore drills, newest first; `?dataset=&client=&result=` filter them."""

    serializer_class = DrillSerializer
    selector = staticmethod(drill_list)
    filterset_class = DrillFilter
    extra_permission_classes = (AdminWrites,)

    @extend_schema(request=DrillStartSerializer, responses={202: DrillSerializer})
    def create(self, request: Request) -> Response:
        """Start a drill now (owners and admins); a worker carries it out."""
        body = DrillStartSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data["scenario"] == DrillScenario.RANDOM:
            drill = drill_start(
                actor=self.actor,
                dataset=data["dataset"],
                snapshot=data.get("snapshot"),
                origin=request_origin(request),
            )
        else:
            drill = drill_scenario_start(
                actor=self.actor,
                scenario=data["scenario"],
                dataset=data["dataset"],
                as_of=data.get("as_of"),
                path=data.get("path", ""),
                origin=request_origin(request),
            )
        fresh = self.get_queryset().get(pk=drill.pk)
        return Response(DrillSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DrillProjectSerializer, responses={202: DrillSerializer(many=True)})
    @action(detail=False, methods=["post"])
    def project(self, request: Request) -> Response:
        """The whole client project as of a week ago: one drill per dataset (202, the drills)."""
        body = DrillProjectSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        drills = drill_project_start(
            actor=self.actor,
            client=body.validated_data["client"],
            as_of=body.validated_data.get("as_of"),
            origin=request_origin(request),
        )
        fresh = self.get_queryset().filter(pk__in=[d.pk for d in drills])
        return Response(DrillSerializer(fresh, many=True).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=DrillReviewSerializer, responses={200: DrillSerializer})
    @action(detail=True, methods=["post"])
    def review(self, request: Request, id: str) -> Response:  # URL kwarg name
        """Record that an owner or admin reviewed the finished drill."""
        drill = self.get_object()
        body = DrillReviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        reviewed = drill_review(actor=self.actor, drill=drill, note=body.validated_data["note"])
        return Response(DrillSerializer(reviewed).data)
