"""Page forms. They validate shape; services validate rules; errors land on the right field."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q

from clients import selectors
from clients.models import (
    DEFAULT_RPO,
    DEFAULT_RTO,
    MAX_RPO,
    MAX_RTO,
    MIN_DURATION,
    Classification,
    Client,
    DatasetKind,
)
from kernel.exceptions import ApplicationError
from kernel.forms import form_refusal
from kernel.tenancy import Actor

DURATION_HELP = "HH:MM:SS, or ISO 8601 such as PT4H or P1D."


class DatasetRegisterForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=DatasetKind.choices)
    classification = forms.ChoiceField(
        choices=Classification.choices, initial=Classification.CONFIDENTIAL
    )
    contains_personal_data = forms.BooleanField(required=False)
    source = forms.CharField(max_length=500, required=False, help_text="Where the data came from.")
    location: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, to_field_name="public_id"
    )
    path = forms.CharField(
        max_length=1024, required=False, help_text="Path or key prefix of the primary copy."
    )
    engagement: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, to_field_name="public_id", required=False
    )
    owner: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="username",
        required=False,
        help_text="Responsible for this dataset's backups (default: you).",
    )
    rpo = forms.DurationField(
        label="RPO",
        initial=DEFAULT_RPO,
        help_text=DURATION_HELP,
        validators=[MinValueValidator(MIN_DURATION), MaxValueValidator(MAX_RPO)],
    )
    rto = forms.DurationField(
        label="RTO",
        initial=DEFAULT_RTO,
        help_text=DURATION_HELP,
        validators=[MinValueValidator(MIN_DURATION), MaxValueValidator(MAX_RTO)],
    )

    def __init__(self, *args: Any, actor: Actor, client: Client, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: dict[str, Any] = self.fields
        fields["location"].queryset = selectors.location_list(actor=actor).filter(
            Q(client__isnull=True) | Q(client=client)
        )
        fields["engagement"].queryset = selectors.engagement_list(actor=actor).filter(client=client)
        fields["owner"].queryset = selectors.member_user_list(actor=actor).order_by("username")

    def apply_errors(self, error: ValidationError | ApplicationError) -> None:
        form_refusal(self, error)
