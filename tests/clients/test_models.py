"""Structural rules of the tenant models."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.db import models

TENANT_APPS = ("clients", "backups", "lifecycle")


def _tenant_models() -> list[type[models.Model]]:
    found = []
    for app in TENANT_APPS:
        for model in apps.get_app_config(app).get_models():
            names = {f.name for f in model._meta.get_fields()}
            if "organization" in names:
                found.append(model)
    return found


def test_there_are_tenant_models() -> None:
    assert len(_tenant_models()) >= 6


@pytest.mark.parametrize("model", _tenant_models(), ids=lambda m: m.__name__)
def test_tenant_models_have_public_uuid_and_scoped_manager(model: type[models.Model]) -> None:
    public_id = model._meta.get_field("public_id")
    assert isinstance(public_id, models.UUIDField)
    assert public_id.unique
    assert hasattr(model._default_manager, "visible_to")


@pytest.mark.parametrize("model", _tenant_models(), ids=lambda m: m.__name__)
def test_unique_constraints_include_organization(model: type[models.Model]) -> None:
    for constraint in model._meta.constraints:
        if isinstance(constraint, models.UniqueConstraint):
            assert "organization" in constraint.fields, constraint.name
