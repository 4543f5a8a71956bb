"""Uploading a SaaS export (backups.services.exports): the file is streamed, and refused while it
streams once it passes AGENCYOPS_EXPORT_MAX_BYTES, never read whole first."""

from __future__ import annotations

from typing import Any

from django.core.files.uploadedfile import UploadedFile
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from backups import selectors, services
from kernel.uploads import upload_limit


class ExportUploadSerializer(serializers.Serializer[Any]):
    file = serializers.FileField(help_text="The export file (a zip, a JSON or CSV dump, …).")


class ExportUploads:
    """`POST /api/v1/datasets/<id>/exports/` (multipart, field `file`): a SaaS dataset's export,
    stored as a snapshot by the backup run it starts (202 with the run)."""

    actor: Any
    get_object: Any

    @extend_schema(request={"multipart/form-data": ExportUploadSerializer}, responses={202: None})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def exports(self, request: Request, id: str) -> Response:  # URL kwarg name
        from backups.api.core import BackupRunSerializer

        dataset = self.get_object()
        services.saas_export_allowed(actor=self.actor, dataset=dataset)
        guard = upload_limit(request._request, services.export_limit())
        if guard is None:
            raise services.export_too_large(int(request.META.get("CONTENT_LENGTH") or 0))
        body = ExportUploadSerializer(data=request.data)
        if guard.exceeded:
            raise services.export_too_large(guard.seen)
        body.is_valid(raise_exception=True)
        upload: UploadedFile = body.validated_data["file"]
        run = services.saas_export_receive(actor=self.actor, dataset=dataset, upload=upload)
        fresh = selectors.backup_run_get(actor=self.actor, public_id=run.public_id)
        return Response(BackupRunSerializer(fresh).data, status=status.HTTP_202_ACCEPTED)
