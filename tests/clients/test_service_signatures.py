"""The fields a caller may set are listed once, in the services' keyword arguments: the API's
serializers and the page's form hand their validated data straight to them, so a writable field
the service does not take (or one it takes that the API cannot set) fails here, not as a 500."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework import serializers

from clients import services
from clients.api import (
    ClientSerializer,
    DatasetSerializer,
    EngagementSerializer,
    LocationSerializer,
)
from clients.forms import DatasetRegisterForm
from clients.services import UNCHANGED


def _arguments(service: Callable[..., Any], *, besides: tuple[str, ...]) -> set[str]:
    parameters = inspect.signature(service).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters)
    return {p.name for p in parameters} - {"actor", *besides}


def _writable(serializer: type[serializers.ModelSerializer[Any]]) -> set[str]:
    return {name for name, field in serializer().fields.items() if not field.read_only}


# serializer, create service, update service, the update's instance, fields fixed at creation
CASES = [
    (ClientSerializer, services.client_create, services.client_update, "client", ()),
    (
        EngagementSerializer,
        services.engagement_create,
        services.engagement_update,
        "engagement",
        ("client",),
    ),
    (LocationSerializer, services.location_create, services.location_update, "location", ()),
    (DatasetSerializer, services.dataset_register, services.dataset_update, "dataset", ("client",)),
]


@pytest.mark.parametrize(("serializer", "create", "update", "instance", "fixed"), CASES)
def test_the_api_sets_exactly_what_the_services_take(
    serializer: Any, create: Any, update: Any, instance: str, fixed: tuple[str, ...]
) -> None:
    writable = _writable(serializer)
    assert writable == _arguments(create, besides=())
    assert writable - set(fixed) == _arguments(update, besides=(instance,))
    # Every field of an update is optional, and not given means unchanged.
    update_defaults = inspect.signature(update).parameters
    assert all(update_defaults[name].default is UNCHANGED for name in writable - set(fixed))


def test_the_register_page_sets_only_what_the_service_takes() -> None:
    form_fields = set(DatasetRegisterForm.base_fields)
    assert form_fields <= _arguments(services.dataset_register, besides=("client",))
