"""`UNCHANGED`, the default of an update service's arguments: a field not given keeps its
value, and None is a value (it empties the field)."""

from __future__ import annotations

from enum import Enum
from typing import Final


class Unchanged(Enum):
    """The type of `UNCHANGED`: an enum of one member, so a type checker narrows
    `value is UNCHANGED` (PEP 484's sentinel pattern)."""

    UNCHANGED = "UNCHANGED"


UNCHANGED: Final = Unchanged.UNCHANGED


def changes_given(**fields: object) -> dict[str, object]:
    """The fields an update was given, by name: those not left UNCHANGED."""
    return {name: value for name, value in fields.items() if value is not UNCHANGED}
