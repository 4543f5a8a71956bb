"""Errors of the page forms, by field: DRF's error detail and the services' refusals as the
sentences a form shows next to each field."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from kernel.exceptions import ApplicationError

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
    """A service's refusal, by field (FORM for the form); indexed names go to their list
    (`target_retention.0.days` → `target_retention`)."""
    found: Errors = {}
    if isinstance(error, ApplicationError):
        for name, texts in error.fields.items():
            found.setdefault(name.split(".")[0], []).extend(texts)
        found.setdefault(FORM, []).append(error.message)
        return found
    if hasattr(error, "error_dict"):
        for name, texts in error.message_dict.items():
            found.setdefault(FORM if name == NON_FIELD_ERRORS else name, []).extend(texts)
    else:
        found[FORM] = list(error.messages)
    return found
