"""What the inventory API's views share: a member picked by username, and the base of views
whose writes go through services."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from rest_framework import mixins, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from clients import selectors
from kernel.api import TenantViewSet
from kernel.tenancy import Actor

User = get_user_model()


class MemberUserField(serializers.SlugRelatedField[Any]):
    """A user of the actor's organization, by username."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("queryset", User.objects.all())
        super().__init__(slug_field="username", **kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        actor: Actor | None = self.context.get("actor")
        if actor is None:
            return User.objects.none()
        return selectors.member_user_list(actor=actor)


class _WriteThroughServices(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantViewSet[Any]):
    """List/retrieve from the selector; create/update go through `create_with`/`update_with`
    and the result is read back through the selector so annotations are present."""

    http_method_names = ["get", "post", "patch", "head", "options"]

    def create_with(self, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def update_with(self, instance: Any, data: dict[str, Any]) -> Any:
        raise NotImplementedError

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        created = self.create_with(dict(serializer.validated_data))
        fresh = self.get_queryset().get(pk=created.pk)
        return Response(self.get_serializer(fresh).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        instance = self.get_object()
        serializer = self.get_serializer(instance, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        updated = self.update_with(instance, dict(serializer.validated_data))
        fresh = self.get_queryset().get(pk=updated.pk)
        return Response(self.get_serializer(fresh).data)
