"""Settings page forms. They validate shape only; the services validate the rules and their
refusals land on the named fields (`kernel.forms.form_refusal`)."""

from __future__ import annotations

import zoneinfo
from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.utils import timezone

from clients import selectors
from clients.models import (
    ClientStatus,
    GrantPermission,
    LocationKind,
    Provider,
    Role,
)
from clients.services.locations import CREDENTIAL_SHAPES
from kernel.tenancy import Actor

# Every credential field a location kind may take (clients.services.locations checks which).
CREDENTIAL_FIELDS = (
    "access_key_id",
    "secret_access_key",
    "username",
    "token",
    "password",
    "ssh_private_key",
)


class SecretTextarea(forms.Textarea):
    """A textarea that never renders its value back (a pasted private key)."""

    def format_value(self, value: Any) -> None:
        return None


def _secret(label: str, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        max_length=1024,
        strip=False,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


def _shapes_help() -> str:
    words: dict[str, str] = {
        LocationKind.S3: "S3: access key id and secret access key",
        LocationKind.GIT: "git: username and token, or an SSH private key",
        LocationKind.POSTGRES: "PostgreSQL: username and password",
        LocationKind.MYSQL: "MySQL/MariaDB: username and password",
    }
    return "; ".join(words[kind] for kind in CREDENTIAL_SHAPES) + "."


class LocationForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=LocationKind.choices, initial=LocationKind.S3)
    provider = forms.ChoiceField(choices=Provider.choices, initial=Provider.AWS)
    endpoint_url = forms.CharField(
        label="Endpoint URL",
        max_length=500,
        required=False,
        help_text="S3: the service's URL (empty for AWS). Git: the host's base URL. Database: "
        "postgresql://host:port or mysql://host:port.",
    )
    region = forms.CharField(max_length=64, required=False)
    bucket = forms.CharField(max_length=63, required=False, help_text="S3 only.")
    # The form's own `prefix` attribute is BaseForm's; the metaclass takes declared fields
    # out of the class, so this field does not replace it.
    prefix = forms.CharField(  # type: ignore[assignment]
        max_length=1024,
        required=False,
        help_text="S3: a key prefix inside the bucket. Local directory: its absolute path.",
    )
    client: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="public_id",
        required=False,
        empty_label="Shared (every client's folder)",
        help_text="Set when the location holds only this client's data.",
    )
    # Credentials: write-only. Never rendered back, not even after a form error.
    access_key_id = _secret("Access key id")
    secret_access_key = _secret("Secret access key")
    username = _secret("Username")
    token = _secret("Token")
    password = _secret("Password")
    ssh_private_key = forms.CharField(
        label="SSH private key",
        required=False,
        max_length=16384,
        strip=False,
        widget=SecretTextarea(attrs={"rows": 4, "autocomplete": "off"}),
    )
    remove_credentials = forms.BooleanField(required=False, label="Remove the stored credentials")

    def __init__(self, *args: Any, actor: Actor, editing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: dict[str, Any] = self.fields
        fields["client"].queryset = selectors.client_list(actor=actor)
        fields["access_key_id"].help_text = _shapes_help()
        if not editing:
            del fields["remove_credentials"]

    def location_fields(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            name: data[name]
            for name in (
                "name",
                "kind",
                "provider",
                "endpoint_url",
                "region",
                "bucket",
                "prefix",
                "client",
            )
        }

    def credentials(self) -> dict[str, str]:
        """The credential fields given (empty ones left out: the service checks the shape)."""
        return {
            name: self.cleaned_data[name] for name in CREDENTIAL_FIELDS if self.cleaned_data[name]
        }

    def credentials_given(self) -> bool:
        return any(self.data.get(name) for name in CREDENTIAL_FIELDS)


class ClientForm(forms.Form):
    name = forms.CharField(max_length=200)
    slug = forms.SlugField(
        max_length=80, required=False, help_text="Short name in folders and URLs; empty: made up."
    )
    status = forms.ChoiceField(choices=ClientStatus.choices, initial=ClientStatus.ACTIVE)
    contact_name = forms.CharField(max_length=200, required=False)
    contact_email = forms.EmailField(required=False)
    contract_reference = forms.CharField(max_length=200, required=False)
    dpa_reference = forms.CharField(label="DPA reference", max_length=200, required=False)


class EngagementForm(forms.Form):
    name = forms.CharField(max_length=200)
    starts_on = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty while it is open-ended.",
    )
    deletion_due_days = forms.IntegerField(
        label="Delete within (days)",
        min_value=0,
        max_value=3650,
        initial=30,
        help_text="Days after the engagement ends by which its data must be deleted.",
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="E-mail")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)


class InvitationAcceptForm(forms.Form):
    username = forms.CharField(
        max_length=150, widget=forms.TextInput(attrs={"autocomplete": "username"})
    )
    password = forms.CharField(
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="At least 12 characters; not a common password.",
    )


class GrantForm(forms.Form):
    grantee: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, to_field_name="username", label="Member"
    )
    client: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None, to_field_name="public_id"
    )
    dataset: forms.ModelChoiceField[Any] = forms.ModelChoiceField(
        queryset=None,
        to_field_name="public_id",
        required=False,
        empty_label="The whole client",
        help_text="Only this dataset of the client.",
    )
    permission = forms.ChoiceField(choices=GrantPermission.choices, initial=GrantPermission.VIEW)
    reason = forms.CharField(max_length=500, help_text="Why this access is needed (audited).")
    expires_at = forms.DateTimeField(
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="In your time zone.",
    )

    def __init__(self, *args: Any, actor: Actor, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: dict[str, Any] = self.fields
        fields["grantee"].queryset = selectors.member_user_list(actor=actor).order_by("username")
        fields["client"].queryset = selectors.client_list(actor=actor)
        fields["dataset"].queryset = selectors.dataset_list(actor=actor).order_by(
            "client__name", "name"
        )
        fields["dataset"].label_from_instance = lambda d: f"{d.client.name}: {d.name}"
        days = min(settings.AGENCYOPS_DEFAULT_GRANT_DAYS, settings.AGENCYOPS_GRANT_MAX_DAYS)
        fields["expires_at"].initial = timezone.localtime(
            timezone.now() + timedelta(days=days)
        ).replace(second=0, microsecond=0)


class GrantDecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])
    comment = forms.CharField(max_length=500, required=False)


def _zones() -> list[tuple[str, str]]:
    return [(zone, zone) for zone in sorted(zoneinfo.available_timezones())]


class AccountForm(forms.Form):
    time_zone = forms.ChoiceField(
        choices=_zones, help_text="Dates and times on every page are shown in this zone."
    )
