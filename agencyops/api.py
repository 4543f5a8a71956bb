"""The API's shared parts: the tenant base class no endpoint bypasses and the error shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models
from django.http import Http404
from django.utils.dateparse import parse_duration
from django.utils.duration import duration_iso_string
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from agencyops.exceptions import ApplicationError
from agencyops.tenancy import Actor, actor_for_user, get_visible_or_404, parse_public_id

logger = logging.getLogger(__name__)
_M = TypeVar("_M", bound=models.Model)


# --- errors ---


def _error(
    status: int, detail: str, code: str, fields: Mapping[str, Any] | None = None
) -> Response:
    body: dict[str, Any] = {"detail": detail, "code": code}
    if fields:
        body["fields"] = fields
    return Response(body, status=status)


def _field_messages(detail: Any) -> dict[str, Any]:
    if isinstance(detail, Mapping):
        return {str(k): _flatten(v) for k, v in detail.items()}
    return {"non_field_errors": _flatten(detail)}


def _flatten(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _flatten(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_flatten(v) for v in value]
    return str(value)


def exception_handler(exc: Exception, context: Mapping[str, Any]) -> Response | None:
    """One mapping from errors to answers: 400 with field messages, 401, 403, 404, 409."""
    if isinstance(exc, ApplicationError):
        return _error(exc.status, exc.message, exc.code, exc.fields or None)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 1024
        return _error(400, f"The request body is larger than the {limit} KiB limit.", "too_large")
    if isinstance(exc, SuspiciousOperation):
        return _error(400, "The request was refused as malformed.", "bad_request")
    if isinstance(exc, DjangoValidationError):
        fields = (
            {k: [str(m) for m in v] for k, v in exc.message_dict.items()}
            if hasattr(exc, "error_dict")
            else {"non_field_errors": [str(m) for m in exc.messages]}
        )
        fields = {("non_field_errors" if k == "__all__" else k): v for k, v in fields.items()}
        return _error(400, "Invalid input.", "invalid", fields)
    if isinstance(exc, IntegrityError):
        logger.warning("integrity error on %s: %s", context.get("view"), type(exc).__name__)
        return _error(409, "The change conflicts with existing data; reload and retry.", "conflict")
    if isinstance(exc, Http404):
        return _error(404, "Not found.", "not_found")
    if isinstance(exc, exceptions.ValidationError):
        return _error(400, "Invalid input.", "invalid", _field_messages(exc.detail))
    response = drf_exception_handler(exc, dict(context))
    if response is not None and isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = {"detail": str(exc.detail), "code": code}
    return response


# --- tenancy ---


class HasOrganization(permissions.BasePermission):
    """Builds `request.actor` once; a user of no organization gets nothing."""

    message = "Your account belongs to no organization."

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = request.auth
        actor = actor_for_user(request.user, token_id=getattr(token, "pk", None))
        request.actor = actor  # type: ignore[attr-defined]  # set once here, read by every view
        return actor is not None


class AuditorReadOnly(permissions.BasePermission):
    message = "Auditors have read-only access."

    def has_permission(self, request: Request, view: APIView) -> bool:
        actor: Actor = request.actor  # type: ignore[attr-defined]
        return request.method in permissions.SAFE_METHODS or not actor.is_read_only


class AdminWrites(permissions.BasePermission):
    """Writes to organization administration (clients, locations, grants, members).

    On a detail route the check waits for the object: an object the actor cannot see answers
    404 first, so a refusal never confirms that something exists.
    """

    message = "Only an owner or admin may change this."

    def _allowed(self, request: Request) -> bool:
        actor: Actor = request.actor  # type: ignore[attr-defined]
        return request.method in permissions.SAFE_METHODS or actor.is_admin

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(getattr(view, "detail", False)) or self._allowed(request)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return self._allowed(request)


class OrganizationWideReads(permissions.BasePermission):
    """Reads of organization-wide records (members): owners, admins and auditors."""

    message = "Only owners, admins and auditors may see this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        actor: Actor = request.actor  # type: ignore[attr-defined]
        return actor.sees_whole_organization


class TenantViewSet(viewsets.GenericViewSet[_M], Generic[_M]):
    """Base of every tenant endpoint. Subclasses add permissions, never replace these."""

    BASE_PERMISSIONS: ClassVar[tuple[type[permissions.BasePermission], ...]] = (
        permissions.IsAuthenticated,
        HasOrganization,
        AuditorReadOnly,
    )
    extra_permission_classes: ClassVar[tuple[type[permissions.BasePermission], ...]] = ()
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    selector: ClassVar[Callable[..., Any]]

    def get_permissions(self) -> list[permissions.BasePermission]:
        return [cls() for cls in (*self.BASE_PERMISSIONS, *self.extra_permission_classes)]

    @property
    def actor(self) -> Actor:
        return self.request.actor  # type: ignore[attr-defined, no-any-return]

    def get_queryset(self) -> models.QuerySet[_M]:
        if getattr(self, "swagger_fake_view", False):
            # Schema generation runs without a request actor: describe, never read.
            model: type[_M] = self.serializer_class.Meta.model  # type: ignore[union-attr]
            return model._default_manager.none()
        return type(self).selector(actor=self.actor)  # type: ignore[no-any-return]

    def get_object(self) -> _M:
        obj = get_visible_or_404(self.get_queryset(), self.kwargs[self.lookup_url_kwarg])
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["actor"] = getattr(self.request, "actor", None)
        return context


# --- serializer fields ---


class VisibleRelatedField(serializers.SlugRelatedField[Any]):
    """A reference by public UUID, resolved only among rows the actor may see."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        "does_not_exist": "No {model} with id {value} is visible to you.",
        "invalid": "Expected a UUID.",
    }

    def __init__(self, model: type[models.Model], **kwargs: Any) -> None:
        self.model = model
        kwargs.setdefault("queryset", model._default_manager.all())
        super().__init__(slug_field="public_id", **kwargs)

    def get_queryset(self) -> Any:
        actor: Actor | None = self.context.get("actor")
        if actor is None:
            return self.model._default_manager.none()
        return self.model._default_manager.visible_to(actor)  # type: ignore[attr-defined]

    def to_internal_value(self, data: Any) -> Any:
        parsed = parse_public_id(data) if isinstance(data, str) else None
        if parsed is None:
            self.fail("invalid")
        obj = self.get_queryset().filter(public_id=parsed).first()
        if obj is None:
            self.fail("does_not_exist", model=self.model._meta.verbose_name, value=parsed)
        return obj


class FlexibleDurationField(serializers.DurationField):
    """Accepts `HH:MM:SS`, `D HH:MM:SS` and ISO 8601 (`PT4H`, `P1D`); answers in ISO 8601."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": "Use HH:MM:SS or ISO 8601 (for example PT4H or P1D).",
        "max_value": "At most {max_value}.",
        "min_value": "At least {min_value}.",
    }

    def to_internal_value(self, value: Any) -> timedelta:
        if isinstance(value, timedelta):
            parsed: timedelta | None = value
        elif isinstance(value, str) and len(value) <= 64:
            parsed = parse_duration(value.strip())
        else:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        return parsed

    def to_representation(self, value: timedelta) -> str:
        return duration_iso_string(value)
