"""Errors of the page forms, by field: DRF's error detail and the services' refusals as the
sentences a form shows next to each field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

from kernel.exceptions import ApplicationError
from kernel.forms import WHOLE_FORM, refusal_fields

Errors = dict[str, list[str]]
FORM = "form"  # errors about the whole form


def flatten(detail: Any) -> list[str]:
    """DRF's nested error detail as plain sentences."""
    if isinstance(detail, dict):
        return [
            f"{k}: {m}" if not str(k).isdigit() else m
            for k, v in detail.items()
            for m in flatten(v)
        ]
    if isinstance(detail, list):
        return [m for item in detail for m in flatten(item)]
    return [str(detail)]


def serializer_errors(errors: Any) -> Errors:
    return {str(name): flatten(detail) for name, detail in dict(errors).items()}


def error_fields(error: ApplicationError | ValidationError) -> Errors:
    """A service's refusal, by field (FORM for the form), for the pages that render their
    own fields: the kernel's reading of a refusal under this module's key for the form."""
    return {
        (FORM if name == WHOLE_FORM else name): texts
        for name, texts in refusal_fields(error).items()
    }
