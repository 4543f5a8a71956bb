"""Backup page forms: restore a point in time, pick a policy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q

from backups import selectors
from backups.services import restore_default_path
from clients.models import Dataset
from clients.selectors import location_list
from kernel.tenancy import Actor


class RestoreForm(forms.Form):
    as_of = forms.DateTimeField(
        label="Restore the data as it was at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text="UTC. Empty: the latest snapshot.",
    )
    path_prefix = forms.CharField(
        label="Only this file or folder",
        required=False,
        max_length=1024,
        help_text="Relative to the dataset, e.g. notes/ — empty restores everything.",
    )
    destination_location: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, to_field_name="public_id", label="Restore into"
    )
    destination_path = forms.CharField(
        label="Folder inside it",
        max_length=1024,
        help_text="Relative path; existing files there are overwritten.",
    )

    def __init__(self, *args: Any, actor: Actor, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["destination_location"]
        field.queryset = location_list(actor=actor).filter(
            Q(client__isnull=True) | Q(client=dataset.client)
        )
        field.initial = dataset.location.public_id
        # Only a suggestion: where a restore may go is restore_request's rule, not the form's.
        self.fields["destination_path"].initial = restore_default_path(dataset, dataset.location)

    def clean_path_prefix(self) -> str:
        value: str = self.cleaned_data["path_prefix"].strip().strip("/")
        if ".." in value.split("/") or "\x00" in value:
            raise forms.ValidationError("The path may not contain '..'.")
        return value


class PolicyForm(forms.Form):
    policy: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="public_id",
        required=False,
        empty_label="Default for its kind and state",
    )
    live_pipeline_input = forms.BooleanField(
        required=False, label="Live input of a client pipeline (back up continuously)"
    )

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["policy"]
        field.queryset = selectors.policy_list(actor=actor)
