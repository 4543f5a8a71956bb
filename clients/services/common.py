"""What the clients services share: the save that validates first, and slugs. (`UNCHANGED`,
the update services' sentinel, is the kernel's: kernel/changes.py; re-exported here.)"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from django.db import models
from django.utils.text import slugify

from kernel.changes import UNCHANGED, Unchanged, changes_apply

__all__ = ["UNCHANGED", "Unchanged", "changes_apply", "unique_slug", "validated_save"]

_M = TypeVar("_M", bound=models.Model)


def validated_save(obj: _M, *, update_fields: Iterable[str] | None = None) -> _M:
    """`full_clean()` (field rules, `clean()`, constraints), then save."""
    obj.full_clean()
    obj.save(update_fields=list(update_fields) if update_fields is not None else None)
    return obj


def unique_slug(base: str, exists: Callable[[str], bool]) -> str:
    """A slug of `base` that `exists` does not know yet (`base-2`, `base-3`, …)."""
    root = slugify(base)[:70] or "item"
    slug, n = root, 2
    while exists(slug):
        slug, n = f"{root}-{n}", n + 1
    return slug
