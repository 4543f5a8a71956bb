"""The default manager of a tenant model is scoped: `Model.objects` returns the current
organization's rows, refuses to query outside any scope, and reads every organization only in
the named system scope (tasks, commands, the operator's admin). The tests themselves run in the
system scope (tests/conftest.py); each case below opens the scope it is about."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Exists, OuterRef
from django_scopes import ScopeError

from agencyops.celery import SystemScopedTask, app
from clients.models import Client, Dataset
from kernel.tenancy import closed_scope, in_system_scope, organization_scope, system_scope

pytestmark = pytest.mark.django_db


def _names(queryset: Any) -> set[str]:
    return set(queryset.values_list("name", flat=True))


def test_an_organization_scope_returns_that_organizations_rows_only(world: Any) -> None:
    everyone = _names(Client.objects.all())
    assert world.other_client.name in everyone
    assert world.client.name in everyone
    with organization_scope(world.org.pk):
        mine = _names(Client.objects.all())
        assert world.client.name in mine
        assert world.client_b.name in mine
        assert world.other_client.name not in mine
        assert not Client.objects.filter(pk=world.other_client.pk).exists()
        assert Client.objects.filter(pk=world.other_client.pk).count() == 0
        assert Client.objects.filter(pk=world.other_client.pk).first() is None
        with pytest.raises(Client.DoesNotExist):
            Client.objects.get(pk=world.other_client.pk)
        assert list(Client.objects.filter(pk=world.other_client.pk).iterator()) == []
        # Writes through the manager reach this organization's rows only.
        assert Client.objects.filter(pk=world.other_client.pk).update(name="taken") == 0
        assert Client.objects.filter(pk=world.other_client.pk).delete()[0] == 0
        # A tenant queryset inside another query is scoped too (subquery, EXISTS, union).
        inner = Client.objects.filter(pk=world.other_client.pk)
        assert not Dataset.objects.filter(client__in=inner).exists()
        foreign = Dataset.objects.filter(pk=world.other_dataset.pk).order_by().values("name")
        mine_only = Client.objects.filter(pk=world.client.pk).order_by().values("name")
        assert _names(mine_only.union(foreign)) == {world.client.name}
        assert not Client.objects.filter(
            Exists(Dataset.objects.filter(client=OuterRef("pk"), pk=world.other_dataset.pk))
        ).exists()
        # A reverse relation is a tenant queryset as well.
        assert world.other_client.datasets.count() == 0
    world.other_client.refresh_from_db()
    assert world.other_client.name != "taken"


def test_outside_any_scope_a_tenant_query_is_refused(world: Any) -> None:
    with closed_scope():
        built = Client.objects.filter(name=world.client.name)  # building is harmless
        for run in (list, len, bool):
            with pytest.raises(ScopeError):
                run(built)
        with pytest.raises(ScopeError):
            built.count()
        with pytest.raises(ScopeError):
            built.update(name="x")
        with pytest.raises(ScopeError):
            built.delete()
        with pytest.raises(ScopeError):
            Client.objects.unscoped_for_system_task()
        with pytest.raises(ScopeError):
            list(world.client.datasets.all())
    with organization_scope(world.org.pk), pytest.raises(ScopeError):
        Client.objects.unscoped_for_system_task()


def test_the_scope_is_read_when_the_query_runs(world: Any) -> None:
    """A queryset built at import (a serializer field's, in the system scope of manage.py) takes
    the scope of the request that runs it."""
    with system_scope():
        built_at_import = Client.objects.all()
    with organization_scope(world.other_org.pk):
        assert _names(built_at_import.all()) == {world.other_client.name}
    with organization_scope(world.org.pk):
        assert world.other_client.name not in _names(built_at_import.all())


def test_a_request_before_its_actor_is_scoped_closed_and_after_it_to_its_organization(
    world: Any, client: Any
) -> None:
    """Through the real stack (middleware, API base): the owner of org A lists clients and gets
    A's only, though the test around it runs in the system scope."""
    client.force_login(world.owner)
    body = client.get("/api/v1/clients/?page_size=100").json()
    names = {row["name"] for row in body["results"]}
    assert world.client.name in names
    assert world.other_client.name not in names


def test_celery_tasks_run_in_the_system_scope() -> None:
    seen: list[bool] = []

    @app.task(bind=False, name="tests.scope_probe")
    def probe() -> None:
        seen.append(in_system_scope())

    assert isinstance(probe, SystemScopedTask)
    with closed_scope():
        probe.apply()
    assert seen == [True]


def test_every_model_with_an_organization_has_the_scoped_manager() -> None:
    """A new tenant model cannot forget the scope: its default (and every) manager's queryset
    is a TenantQuerySet. Child rows without an organization of their own (a run's targets, a
    deletion's items) are reached through their scoped parent."""
    from django.apps import apps

    from kernel.tenancy import TenantQuerySet

    tenant_models = [
        model
        for model in apps.get_models()
        if model._meta.app_label in ("clients", "backups", "lifecycle")
        and any(field.name == "organization" for field in model._meta.get_fields())
    ]
    assert len(tenant_models) > 30
    unscoped = [
        f"{model._meta.label}.{manager.name}"
        for model in tenant_models
        for manager in model._meta.managers
        if not issubclass(manager._queryset_class, TenantQuerySet)
    ]
    assert not unscoped, unscoped
