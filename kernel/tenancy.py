"""Tenancy, enforced once.

Every tenant read starts from `Model.objects.visible_to(actor)`; every lookup by public id goes
through `get_visible_or_404`, which answers alike for "absent", "another organization's" and
"not granted". The `Actor` is built once per request (API base class, page decorator) or per task
(`Actor.system`).

Below that, the default manager of every tenant model is scoped: each fresh TenantQuerySet
reads the current scope (django-scopes' state). Inside a request it returns the actor's
organization's rows only (`organization_scope`, entered by the API base and the page decorator
once the actor is known); before the actor is known, and in any code that entered no scope, it
refuses to query at all. Every organization's rows need the
explicit `system_scope()`, which Celery tasks, management commands and the operator's admin
enter, and which no view, API, page, form or selector module may call (tests/agencyops/
test_layering.py).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.module_loading import import_string
from django_scopes import ScopeError, get_scope, scope, scopes_disabled

from kernel.exceptions import Forbidden, NotFound

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

_M = TypeVar("_M", bound=models.Model)

WHOLE_ORGANIZATION_ROLES = frozenset({"owner", "admin", "auditor", "system"})
ADMIN_ROLES = frozenset({"owner", "admin", "system"})
# "procurement": a client's procurement token, never a member's role.
READ_ONLY_ROLES = frozenset({"auditor", "procurement"})
LEVELS = {"view": 1, "restore": 2, "manage": 3}


@dataclass(frozen=True)
class Actor:
    """Who is acting, for which organization, with which grants."""

    organization: Any  # clients.Organization; the kernel names no app's model
    role: str
    user: Any = None  # a User, or None for system tasks
    token_id: int | None = None
    # client pk -> highest grant level on the whole client
    client_levels: dict[int, int] = field(default_factory=dict)
    # dataset pk -> highest grant level on that dataset alone
    dataset_levels: dict[int, int] = field(default_factory=dict)
    # clients seen through a dataset grant only (visible, but only that dataset)
    dataset_grant_client_ids: frozenset[int] = frozenset()
    # A procurement token (lifecycle.ProcurementToken): sees its one client, reads only the
    # routes that opt in (evidence, certificates); everything else answers 404.
    procurement_token: Any = None

    @classmethod
    def system(cls, organization: Any) -> Actor:
        """The actor of a Celery task or a management command: the whole organization."""
        return cls(organization=organization, role="system")

    @classmethod
    def procurement(cls, token: Any) -> Actor:
        """The actor of a live procurement token: a view grant on its client, nothing more."""
        return cls(
            organization=token.organization,
            role="procurement",
            procurement_token=token,
            client_levels={int(token.client_id): LEVELS["view"]},
        )

    @property
    def is_procurement(self) -> bool:
        return self.procurement_token is not None

    @property
    def organization_id(self) -> int:
        return int(self.organization.pk)

    @property
    def user_id(self) -> int | None:
        return int(self.user.pk) if self.user is not None else None

    @property
    def sees_whole_organization(self) -> bool:
        return self.role in WHOLE_ORGANIZATION_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role in ADMIN_ROLES

    @property
    def is_read_only(self) -> bool:
        return self.role in READ_ONLY_ROLES

    @property
    def visible_client_ids(self) -> frozenset[int]:
        return frozenset(self.client_levels) | self.dataset_grant_client_ids

    def level_on(self, *, client_id: int, dataset_id: int | None = None) -> int:
        """The grant level (0 none … 3 manage) this actor holds on a client or one dataset."""
        if self.is_admin:
            return LEVELS["manage"]
        if self.is_read_only and not self.is_procurement:
            return LEVELS["view"]  # auditors read the whole organization
        level = self.client_levels.get(client_id, 0)
        if dataset_id is not None:
            level = max(level, self.dataset_levels.get(dataset_id, 0))
        return level

    def may(self, permission: str, *, client_id: int, dataset_id: int | None = None) -> bool:
        """Whether `require_level` would pass (for showing or hiding page actions)."""
        try:
            self.require_level(permission, client_id=client_id, dataset_id=dataset_id, action="")
        except Forbidden:
            return False
        return True

    def require_admin(self, action: str) -> None:
        if not self.is_admin:
            raise Forbidden(f"Only an owner or admin may {action}.")

    def require_level(
        self, permission: str, *, client_id: int, dataset_id: int | None = None, action: str
    ) -> None:
        """Refuse unless the actor holds `permission` (view/restore/manage) on the target.

        `manage` also requires the lead role: members hold view/restore grants only.
        """
        if self.is_read_only:
            who = "Procurement tokens have" if self.is_procurement else "Auditors have"
            raise Forbidden(f"{who} read-only access and may not {action}.")
        needed = LEVELS[permission]
        if self.level_on(client_id=client_id, dataset_id=dataset_id) < needed:
            raise Forbidden(f"You need a '{permission}' grant on this client to {action}.")
        if permission == "manage" and self.role == "member":
            raise Forbidden(f"Members may not {action}; ask a project lead or an admin.")


def system_scope() -> AbstractContextManager[None]:
    """Every organization's rows, for the operator's code: Celery tasks, management commands,
    the Django admin, and the few services that must look across organizations before one is
    known (a token found by its hash, a user's own membership). Named loudly on purpose."""
    context: AbstractContextManager[None] = scopes_disabled()
    return context


def organization_scope(organization_id: int) -> AbstractContextManager[None]:
    """Tenant managers return this organization's rows only, until the block ends."""
    context: AbstractContextManager[None] = scope(organization=organization_id)
    return context


def closed_scope() -> AbstractContextManager[None]:
    """Tenant managers refuse every query until an organization or system scope is entered:
    how each request starts (agencyops.middleware)."""
    context: AbstractContextManager[None] = scope()
    return context


def in_system_scope() -> bool:
    return get_scope().get("_enabled", True) is False


def _scope_filter(model: type[models.Model]) -> Q | None:
    """The current scope's filter for a fresh queryset of a tenant model: none in the system
    scope, the organization in an organization scope, and a refusal anywhere else."""
    current = get_scope()
    if current.get("_enabled", True) is False:
        return None
    organization_id = current.get("organization")
    if organization_id is None:
        raise ScopeError(
            f"{model.__name__} was queried outside any tenant scope: enter organization_scope() "
            "(requests do once the actor is known) or, in tasks and commands, system_scope()."
        )
    return Q(organization_id=organization_id)


def grant_filter(actor: Actor, *, client: str | None, dataset: str | None) -> Q:
    """The dataset-grant rule, decided here and nowhere else, for an actor who does not see the
    whole organization. A grant on a client shows every row of that client (`client`: the path
    from the row to its client's pk). A grant on one dataset shows the rows about that dataset
    (`dataset`: the path to the dataset's pk) and nothing else of its client: not its siblings'
    rows, not the client's own client-wide rows (engagements, holds and deletions of the whole
    client). Only the client itself, and the location a dataset lives on, stay visible beside
    the dataset (ClientQuerySet, LocationQuerySet), so the dataset can be shown under them."""
    allowed = Q(pk__in=[])  # nothing, unless a grant below adds rows
    if client is not None:
        allowed |= Q(**{f"{client}__in": list(actor.client_levels)})
    if dataset is not None:
        allowed |= Q(**{f"{dataset}__in": list(actor.dataset_levels)})
    return allowed


class TenantQuerySet(models.QuerySet[_M], Generic[_M]):
    """Base queryset of tenant-owned rows: `visible_to` is the single tenant filter.

    A model's queryset declares how a row belongs below its organization: `client_path` (the
    path to the row's client) and, for rows about one dataset, `dataset_path`. Declaring
    neither makes the rows organization-wide (every member sees them: policies, settings).
    `grant_filter` turns the declaration and the actor's grants into the filter."""

    client_path: ClassVar[str | None] = None
    dataset_path: ClassVar[str | None] = None

    # The scope is read when the query runs, not when the queryset is built: a queryset built
    # at import (a serializer field, a filter set) takes the scope of each request that runs
    # it. Every way a query reaches the database passes one of these methods (iteration,
    # len, get, first and slicing go through _fetch_all; a queryset inside another query goes
    # through resolve_expression).
    _scope_applied = False

    def _scope_apply(self) -> None:
        if not self._scope_applied:
            scoped = _scope_filter(self.model)
            if scoped is not None:
                self.query.add_q(scoped)
            self._scope_applied = True

    def _clone(self) -> Self:
        clone = super()._clone()  # type: ignore[misc]  # private in the stubs
        clone._scope_applied = self._scope_applied
        return clone  # type: ignore[no-any-return]

    def _fetch_all(self) -> None:
        self._scope_apply()
        super()._fetch_all()

    def iterator(self, chunk_size: int | None = None) -> Iterator[_M]:
        self._scope_apply()
        return super().iterator(chunk_size)

    def count(self) -> int:
        self._scope_apply()
        return super().count()

    def exists(self) -> bool:
        self._scope_apply()
        return super().exists()

    def contains(self, obj: models.Model) -> bool:
        self._scope_apply()
        return super().contains(obj)

    def aggregate(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self._scope_apply()
        return super().aggregate(*args, **kwargs)

    def update(self, **kwargs: Any) -> int:
        self._scope_apply()
        return super().update(**kwargs)

    def _update(self, values: Any) -> Any:
        self._scope_apply()
        return super()._update(values)  # type: ignore[misc]

    def delete(self) -> tuple[int, dict[str, int]]:
        self._scope_apply()
        return super().delete()

    def explain(self, **options: Any) -> str:
        self._scope_apply()
        return super().explain(**options)

    def resolve_expression(self, *args: Any, **kwargs: Any) -> Any:
        self._scope_apply()
        return super().resolve_expression(*args, **kwargs)

    def _combinator_query(self, combinator: str, *other_qs: Any, all: bool = False) -> Self:
        self._scope_apply()
        for other in other_qs:
            if isinstance(other, TenantQuerySet):
                other._scope_apply()
        return super()._combinator_query(combinator, *other_qs, all=all)  # type: ignore[misc, no-any-return]

    # Whether owners, admins and auditors see every row (personal tokens: not even they).
    whole_organization_sees_all: ClassVar[bool] = True

    def visible_to(self, actor: Actor) -> Self:
        """The one tenant filter: the actor's organization, then, for an actor who does not see
        all of it, `visible_rows`. Querysets override `visible_rows`, never this."""
        qs = self.filter(organization_id=actor.organization_id)
        if actor.sees_whole_organization and self.whole_organization_sees_all:
            return qs
        return qs.filter(self.visible_rows(actor))

    def visible_rows(self, actor: Actor) -> Q:
        """The rows of its organization an actor sees when it does not see them all: by
        default, those its grants cover along the declared paths (`grant_filter`); rows that
        declare no path are organization-wide and every member sees them. A queryset with
        another rule (shared infrastructure, one's own grants or tokens) overrides this."""
        if self.client_path is None and self.dataset_path is None:
            return Q()
        return grant_filter(actor, client=self.client_path, dataset=self.dataset_path)

    def unscoped_for_system_task(self) -> Any:
        """Every organization's rows. Only for periodic system jobs (dispatchers, sweeps), which
        run inside `system_scope()`; anywhere else it refuses."""
        if not in_system_scope():
            raise ScopeError("unscoped_for_system_task() needs system_scope() (tasks, commands).")
        return self.all()


def parse_public_id(value: object) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def get_visible_or_404(queryset: models.QuerySet[_M], public_id: object) -> _M:
    """The one lookup helper: absent, foreign and ungranted all answer 404 alike."""
    parsed = parse_public_id(public_id)
    if parsed is None:
        raise NotFound()
    obj = queryset.filter(public_id=parsed).first()
    if obj is None:
        raise NotFound()
    return obj


def actor_for_user(
    user: AbstractBaseUser | AnonymousUser | None, *, token_id: int | None = None
) -> Actor | None:
    """The actor of a signed-in user, or None if the user belongs to no organization.

    Memberships and grants live in an app, so the kernel asks the function that settings name
    (`AGENCYOPS_ACTOR_RESOLVER`, wired by the composition root) instead of importing it."""
    return _actor_resolver()(user, token_id=token_id)


@functools.cache
def _actor_resolver() -> Callable[..., Actor | None]:
    resolver: Callable[..., Actor | None] = import_string(settings.AGENCYOPS_ACTOR_RESOLVER)
    return resolver
