"""Backup page forms: restore a point in time, pick a policy."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import Q
from django.utils import timezone

from backups import selectors
from backups.services import restore_default_path
from clients.models import Dataset
from clients.selectors import location_list
from clients.services import client_space
from kernel.exceptions import ApplicationError
from kernel.tenancy import Actor


class RestoreForm(forms.Form):
    """What to restore (a snapshot, or the newest at or before a time, from a chosen copy),
    what part of it and where. Where a restore may go, and what it may overwrite, are
    restore_request's rules, not the form's."""

    snapshot = forms.UUIDField(required=False, widget=forms.HiddenInput)
    as_of = forms.DateTimeField(
        label="Restore the data as it was at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}),
    )
    source: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="public_id",
        required=False,
        label="Read from the copy on",
        empty_label="Any copy (the newest snapshot)",
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
        help_text="A folder inside the client's space there (see the allowed folders).",
    )
    overwrite = forms.BooleanField(
        required=False,
        label="Overwrite files already in that folder",
        help_text="Without it, a folder that already holds files is refused.",
    )

    def __init__(self, *args: Any, actor: Actor, dataset: Dataset, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["destination_location"]
        field.queryset = location_list(actor=actor).filter(
            Q(client__isnull=True) | Q(client=dataset.client)
        )
        field.initial = dataset.location.public_id
        held = selectors.snapshot_list(actor=actor).filter(dataset=dataset).values("location_id")
        source: Any = self.fields["source"]
        source.queryset = location_list(actor=actor).filter(pk__in=held)
        # Parsed and shown in the zone the request activated: the person's own.
        self.fields["as_of"].help_text = (
            f"In your time zone ({timezone.get_current_timezone_name()}). "
            "Empty: the latest snapshot."
        )
        # Only a suggestion: where a restore may go is restore_request's rule, not the form's.
        self.fields["destination_path"].initial = restore_default_path(dataset, dataset.location)
        # Shown beside the form: the folder of the client on each destination (restore_request
        # keeps restores inside it; a location dedicated to the client is its own, root aside).
        self.roots = [
            {"location": location, "space": client_space(location, dataset.client)}
            for location in field.queryset
        ]

    def clean_path_prefix(self) -> str:
        value: str = self.cleaned_data["path_prefix"].strip().strip("/")
        if ".." in value.split("/") or "\x00" in value:
            raise forms.ValidationError("The path may not contain '..'.")
        return value

    def add_application_error(self, error: ApplicationError) -> None:
        """The service's message on the fields it names, the message itself above the form."""
        named = {name: messages for name, messages in error.fields.items() if name in self.fields}
        for name, messages in named.items():
            self.add_error(name, messages)
        self.add_error(None, error.message)


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
