"""A service's refusal on a page's form: the one way every page shows what the API would
answer in its 4xx body, field by field, with the typed input kept in the bound form."""

from __future__ import annotations

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from kernel.exceptions import ApplicationError

WHOLE_FORM = NON_FIELD_ERRORS  # the key of messages about the whole form


def refusal_fields(error: ApplicationError | ValidationError) -> dict[str, list[str]]:
    """The refusal's messages by field (`WHOLE_FORM` for the rest). An indexed name goes to
    its list (`target_retention.0.days` → `target_retention`); an ApplicationError's own
    message is on the whole form unless a field already says it."""
    found: dict[str, list[str]] = {}
    if isinstance(error, ApplicationError):
        for name, texts in error.fields.items():
            found.setdefault(name.split(".")[0], []).extend(texts)
        if not any(error.message in texts for texts in found.values()):
            found.setdefault(WHOLE_FORM, []).append(error.message)
    elif hasattr(error, "error_dict"):
        for name, texts in error.message_dict.items():
            found.setdefault(name, []).extend(texts)
    else:
        found[WHOLE_FORM] = list(error.messages)
    return found


def refusal_status(error: ApplicationError | ValidationError) -> int:
    return error.status if isinstance(error, ApplicationError) else 400


def form_refusal(form: forms.Form, error: ApplicationError | ValidationError) -> int:
    """Put the refusal on `form` (a message for a field the form lacks goes on top) and
    return the status to answer with."""
    for name, texts in refusal_fields(error).items():
        field = name if name in form.fields else None
        for text in texts:
            form.add_error(field, text)
    return refusal_status(error)
