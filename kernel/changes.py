"""`UNCHANGED`, the default of every update service's arguments: a field not given keeps its
value, and None is a value (it empties the field). One sentinel for every app."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Final

from django.db import models


class Unchanged(Enum):
    """The type of `UNCHANGED`: an enum of one member, so a type checker narrows
    `value is UNCHANGED` (PEP 484's sentinel pattern)."""

    UNCHANGED = "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED


def changes_given(**fields: object) -> dict[str, object]:
    """The fields an update was given, by name: those not left UNCHANGED."""
    return {name: value for name, value in fields.items() if value is not UNCHANGED}


def changes_apply(obj: models.Model, changes: Mapping[str, object]) -> list[str]:
    """Set each field of `changes` that was given (not UNCHANGED) and differs; return the
    names set, for `save(update_fields=…)`."""
    changed = []
    for name, value in changes.items():
        if value is not UNCHANGED and getattr(obj, name) != value:
            setattr(obj, name, value)
            changed.append(name)
    return changed
