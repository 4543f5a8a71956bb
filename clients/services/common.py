"""What every service module shares: the save that validates first, slugs, and `UNCHANGED`.

An update service takes each field it may change as a keyword argument defaulting to
`UNCHANGED`: a field not given keeps its value (None is a value: it empties the field). Any
app's update services may use it; it lives here because `clients` is the lowest app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Final, TypeVar

from django.db import models
from django.utils.text import slugify

_M = TypeVar("_M", bound=models.Model)


class Unchanged(Enum):
    """The type of `UNCHANGED`: an enum of one member, so a type checker narrows
    `value is UNCHANGED` (PEP 484's sentinel pattern)."""

    UNCHANGED = "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED


def changes_apply(obj: models.Model, changes: Mapping[str, object]) -> list[str]:
    """Set each field of `changes` that was given (not UNCHANGED) and differs; return the
    names set, for `save(update_fields=…)`."""
    changed = []
    for name, value in changes.items():
        if value is not UNCHANGED and getattr(obj, name) != value:
            setattr(obj, name, value)
            changed.append(name)
    return changed


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
