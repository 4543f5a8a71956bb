"""DRF plug-ins named in settings. Kept apart from kernel.api because DRF imports them while
defining its own view classes (importing views here would be circular)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, metadata, pagination, parsers
from rest_framework.request import clone_request


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
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise _too_deep() from None
        if _depth(data) > MAX_JSON_DEPTH:
            raise _too_deep()
        return data


# No request of this API nests deeper than a handful of levels; a body that does is an attack
# on the parser or on whatever walks the data later.
MAX_JSON_DEPTH = 32


def _too_deep() -> exceptions.ParseError:
    return exceptions.ParseError(
        f"The request body nests deeper than {MAX_JSON_DEPTH} levels.", code="too_deep"
    )


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (the body may be hostile)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_JSON_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


class Pagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


class Metadata(metadata.SimpleMetadata):
    """OPTIONS: DRF's description, except that the object is looked up (to check its
    permissions before PUT is described) only where the URL names one. A singleton served at
    its collection URL (the notification settings, the price table) names none, and DRF's own
    lookup then failed with a KeyError: a 500 for a harmless OPTIONS."""

    def determine_actions(self, request: Any, view: Any) -> dict[str, Any]:
        kwarg = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None)
        if kwarg in getattr(view, "kwargs", {}):
            return dict(super().determine_actions(request, view))
        actions: dict[str, Any] = {}
        for method in sorted({"PUT", "POST"} & set(view.allowed_methods)):
            view.request = clone_request(request, method)
            try:
                view.check_permissions(view.request)
            except (exceptions.APIException, PermissionDenied, Http404):
                continue
            else:
                actions[method] = self.get_serializer_info(view.get_serializer())
            finally:
                view.request = request
        return actions
