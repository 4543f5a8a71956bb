"""The API's shared parts: the tenant base class no endpoint bypasses and the error shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar, cast

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models
from django.dispatch import Signal
from django.http import Http404
from django.utils.dateparse import parse_duration
from django.utils.duration import duration_iso_string
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, permissions, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from kernel.authentication import ProcurementPrincipal
from kernel.exceptions import ApplicationError, NotFound
from kernel.http import request_origin
from kernel.tenancy import (
    Actor,
    actor_for_user,
    get_visible_or_404,
    organization_scope,
    parse_public_id,
)

# Sent after a procurement token's request that recorded no access event of its own (keyword
# arguments: actor, method, path, status, origin); lifecycle records the token's use.
procurement_request_finished = Signal()

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


# --- OpenAPI ---

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Every refusal has this shape (see `exception_handler`).",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in words."},
        "code": {"type": "string", "description": "A stable code: invalid, not_found, …"},
        "fields": {
            "type": "object",
            "additionalProperties": True,
            "description": "With 400: the message(s) of each invalid field.",
        },
    },
    "required": ["detail", "code"],
}
ERROR_RESPONSES = {
    "400": "Invalid input: the body, a query parameter or the page.",
    "401": "No credentials, or an invalid, expired or revoked token.",
    "403": "Authenticated, but the role or grant does not allow this.",
    "404": "Absent, another organization's, not granted, or closed to procurement tokens.",
}
WRITE_ERROR_RESPONSES = {"409": "The change conflicts with the current state."}


class TenantAutoSchema(AutoSchema):
    """Documents the answers every tenant endpoint may give besides its success: the error
    shape with 400, 401, 403 and 404 (and 409 for writes), so clients and schema-driven tests
    know them."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        from drf_spectacular.plumbing import ResolvedComponent

        component = ResolvedComponent(  # type: ignore[no-untyped-call]  # untyped plumbing
            name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
        )
        self.registry.register_on_missing(component)
        errors = dict(ERROR_RESPONSES)
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            errors.update(WRITE_ERROR_RESPONSES)
        media_types = self._error_media_types()
        for code, description in errors.items():
            responses.setdefault(
                code,
                {
                    "description": description,
                    "content": {media: {"schema": component.ref} for media in media_types},
                },
            )
        return responses

    def _error_media_types(self) -> list[str]:
        """Errors are rendered by the view's renderers: JSON, or CSV on a CSV route."""
        media = [r.media_type for r in self.view.get_renderers() if r.format != "api"]
        return [m for m in media if m != "text/html"] or ["application/json"]

    def _get_serializer_field_meta(self, field: Any, direction: str) -> dict[str, Any]:
        """A read-only field shows its model column as it is: null where the column (or a
        relation on the way to it) may be null — `requested_by` of a system run, a released
        hold's `released_by` — whether or not the serializer said `allow_null`."""
        meta: dict[str, Any] = super()._get_serializer_field_meta(  # type: ignore[no-untyped-call]  # untyped base
            field, direction
        )
        if getattr(field, "read_only", False) and any(f.null for f in _source_fields(field)):
            meta["nullable"] = True
        return meta

    def _map_serializer_field(
        self, field: Any, direction: str, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema: dict[str, Any] = super()._map_serializer_field(  # type: ignore[no-untyped-call]  # untyped base
            field, direction, bypass_extensions
        )
        if isinstance(field, serializers.TimeField) and schema.get("format") == "time":
            # DRF writes "02:00:00"; JSON Schema's "time" format demands an offset.
            schema = {k: v for k, v in schema.items() if k != "format"}
            schema["pattern"] = r"^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$"
        if (
            isinstance(field, serializers.ChoiceField)
            and field.read_only
            and "" not in schema.get("enum", [""])
            and (path := _source_fields(field))
            and path[-1].blank
        ):
            # DRF drops `allow_blank` from read-only model fields; the column still holds "".
            schema = {**schema, "enum": [*schema["enum"], ""]}
        return schema


def _source_fields(field: Any) -> list[Any]:
    """The model fields a serializer field reads through (`grant.client.name`: the grant's
    client, the client's name); empty when it reads a property or method."""
    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    found = []
    for attr in getattr(field, "source_attrs", None) or []:
        if model is None:
            return []
        try:
            model_field = model._meta.get_field(attr)
        except FieldDoesNotExist:  # a property or a method: nothing to go by
            return []
        found.append(model_field)
        model = getattr(model_field, "related_model", None)
    return found


class OneDocumentSchema(TenantAutoSchema):
    """For viewsets whose `list` route answers one document (the signing key, evidence), not a
    page of objects: documented as that object, without pagination."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False


def not_found_handler(request: Any, exception: Exception | None = None) -> Any:
    """The project's 404 (`handler404`): under /api/ the error shape in JSON, even for a path
    no route matches (`/api/v1/clients/not a uuid/`); elsewhere Django's page."""
    from django.http import JsonResponse
    from django.views.defaults import page_not_found

    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found.", "code": "not_found"}, status=404)
    return page_not_found(request, exception or Http404())


# --- tenancy ---


class TenantRequest(Request):
    """A DRF request once `HasOrganization` has passed: its actor is known."""

    actor: Actor


def request_actor(request: Request) -> Actor:
    """The actor `HasOrganization` set (it runs first of the base permissions)."""
    return cast(TenantRequest, request).actor


class HasOrganization(permissions.BasePermission):
    """Builds `request.actor` once; a user of no organization gets nothing."""

    message = "Your account belongs to no organization."

    def has_permission(self, request: Request, view: APIView) -> bool:
        actor: Actor | None
        if isinstance(request.user, ProcurementPrincipal):
            actor = request.user.actor  # built by the authentication from the live token
        else:
            token = request.auth
            actor = actor_for_user(request.user, token_id=getattr(token, "pk", None))
        if actor is None:
            return False
        cast(TenantRequest, request).actor = actor  # set once here, read by every view
        if isinstance(view, TenantViewSet):
            view.tenant_scope_enter(actor)
        return True


class ProcurementScope(permissions.BasePermission):
    """A procurement token reads only the actions a view lists in `procurement_actions`, with
    GET or HEAD; anything else answers 404, as if the route did not exist. So a new route is
    closed to procurement tokens unless it opts in."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        actor = request_actor(request)
        if not actor.is_procurement:
            return True
        allowed: frozenset[str] = getattr(view, "procurement_actions", frozenset())
        if request.method in ("GET", "HEAD") and getattr(view, "action", None) in allowed:
            return True
        raise NotFound()


class AuditorReadOnly(permissions.BasePermission):
    message = "Auditors have read-only access."

    def has_permission(self, request: Request, view: APIView) -> bool:
        actor = request_actor(request)
        return request.method in permissions.SAFE_METHODS or not actor.is_read_only


class AdminWrites(permissions.BasePermission):
    """Writes to organization administration (clients, locations, grants, members).

    On a detail route the check waits for the object: an object the actor cannot see answers
    404 first, so a refusal never confirms that something exists.
    """

    message = "Only an owner or admin may change this."

    def _allowed(self, request: Request) -> bool:
        actor = request_actor(request)
        return request.method in permissions.SAFE_METHODS or actor.is_admin

    def has_permission(self, request: Request, view: APIView) -> bool:
        return bool(getattr(view, "detail", False)) or self._allowed(request)

    def has_object_permission(self, request: Request, view: APIView, obj: Any) -> bool:
        return self._allowed(request)


class OrganizationWideReads(permissions.BasePermission):
    """Reads of organization-wide records (members): owners, admins and auditors."""

    message = "Only owners, admins and auditors may see this."

    def has_permission(self, request: Request, view: APIView) -> bool:
        actor = request_actor(request)
        return actor.sees_whole_organization


class TenantViewSet(viewsets.GenericViewSet[_M], Generic[_M]):
    """Base of every tenant endpoint. Subclasses add permissions, never replace these."""

    BASE_PERMISSIONS: ClassVar[tuple[type[permissions.BasePermission], ...]] = (
        permissions.IsAuthenticated,
        HasOrganization,
        ProcurementScope,
        AuditorReadOnly,
    )
    extra_permission_classes: ClassVar[tuple[type[permissions.BasePermission], ...]] = ()
    # Actions a procurement token may read (GET/HEAD); none unless a view opts in.
    procurement_actions: ClassVar[frozenset[str]] = frozenset()
    # Set by a view whose service recorded the request's access event itself (an evidence
    # read), so a procurement token's use is not recorded twice.
    access_event_recorded = False
    lookup_field = "public_id"
    lookup_url_kwarg = "id"
    selector: ClassVar[Callable[..., Any]]
    schema = TenantAutoSchema()

    _tenant_scope: ExitStack | None = None

    def get_permissions(self) -> list[permissions.BasePermission]:
        return [cls() for cls in (*self.BASE_PERMISSIONS, *self.extra_permission_classes)]

    def tenant_scope_enter(self, actor: Actor) -> None:
        """From the moment the actor is known until the response is final, tenant managers
        return its organization's rows only (the middleware opened the request closed)."""
        if self._tenant_scope is None:
            self._tenant_scope = ExitStack()
            self._tenant_scope.enter_context(organization_scope(actor.organization_id))

    @property
    def actor(self) -> Actor:
        return request_actor(self.request)

    def get_queryset(self) -> models.QuerySet[_M]:
        if getattr(self, "swagger_fake_view", False):
            # Schema generation runs without a request actor: describe, never read.
            # The base manager: no tenant scope is open while the schema is drawn.
            model: type[_M] = self.serializer_class.Meta.model  # type: ignore[union-attr]
            return model._base_manager.none()
        return type(self).selector(actor=self.actor)  # type: ignore[no-any-return]

    def get_object(self) -> _M:
        obj = get_visible_or_404(self.get_queryset(), self.kwargs[self.lookup_url_kwarg])
        self.check_object_permissions(self.request, obj)
        return obj

    def get_serializer_context(self) -> dict[str, Any]:
        context = super().get_serializer_context()
        context["actor"] = getattr(self.request, "actor", None)
        return context

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return self._finalize_response(request, response, *args, **kwargs)
        finally:
            if self._tenant_scope is not None:
                self._tenant_scope.close()
                self._tenant_scope = None

    def _finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        """Every use of a procurement token is an access event — a refused one too."""
        response = super().finalize_response(request, response, *args, **kwargs)
        actor: Actor | None = getattr(request, "actor", None)
        if actor is not None and actor.is_procurement and not self.access_event_recorded:
            # The token and its access log live in lifecycle, which listens for this.
            procurement_request_finished.send(
                sender=type(self),
                actor=actor,
                method=str(request.method),
                path=request.path,
                status=int(response.status_code),
                origin=request_origin(request),
            )
        return response


# --- serializer fields ---


class VisibleRelatedField(serializers.SlugRelatedField[Any]):
    """A reference by public UUID, resolved only among rows the actor may see."""

    default_error_messages: ClassVar[dict[str, Any]] = {
        "does_not_exist": "No {model} with id {value} is visible to you.",
        "invalid": "Expected a UUID.",
    }

    def __init__(self, model: type[models.Model], **kwargs: Any) -> None:
        self.model = model
        # DRF wants a queryset at class definition; the real one is `get_queryset`'s, per
        # request. A placeholder from the base manager: no tenant scope is open at import.
        kwargs.setdefault("queryset", model._base_manager.none())
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
