"""DRF plug-ins named in settings. Kept apart from agencyops.api because DRF imports them while
defining its own view classes (importing views here would be circular)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import exceptions, pagination, parsers


class BoundedJSONParser(parsers.JSONParser):
    """JSON, refused with 400 before reading when the body exceeds the configured limit."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        too_big = exceptions.ParseError(
            f"The request body is larger than the {limit // 1024} KiB limit.", code="too_large"
        )
        try:
            if declared and int(declared) > limit:
                raise too_big
        except ValueError:
            raise exceptions.ParseError("Invalid Content-Length header.") from None
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise too_big
        return super().parse(io.BytesIO(body), media_type, parser_context)


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200
