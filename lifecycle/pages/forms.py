"""The lifecycle pages' forms: fields and their widgets only. Every rule is the services'
(their ApplicationError field messages land on these fields, see kernel.forms.form_refusal)."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from lifecycle.models import ObligationKind, ObligationSource
from lifecycle.services.deletion.settings import APPROVAL_CHOICES
from lifecycle.services.processing_records import SAFEGUARDS


def _choices(form: forms.Form, name: str, choices: list[tuple[str, str]]) -> None:
    """Choices read through the selectors by the view (the rows the actor may see)."""
    field = cast(forms.ChoiceField, form.fields[name])
    field.choices = choices


class DeletionRequestForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the data goes: the contract clause, the client's request…",
    )
    drop_primary_databases = forms.BooleanField(
        required=False,
        label="Also drop the client's own primary databases",
        help_text="Off by default: a database dataset's primary is the client's own and is only "
        "named in the plan. On: AgencyOps drops it too (DROP DATABASE), and every approver "
        "confirms that line.",
    )


class DecisionForm(forms.Form):
    comment = forms.CharField(
        max_length=1000, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    confirm_primary_drop = forms.BooleanField(
        required=False, label="I confirm the client's own primary database(s) are dropped"
    )


class LegalHoldForm(forms.Form):
    client = forms.ChoiceField()
    dataset = forms.ChoiceField(required=False, help_text="Empty: the whole client.")
    reason = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, clients: Any = (), datasets: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "client", list(clients))
        _choices(self, "dataset", [("", "The whole client"), *datasets])


class LegalHoldReleaseForm(forms.Form):
    comment = forms.CharField(max_length=500, required=False, label="Why it is released")


class ObligationForm(forms.Form):
    client = forms.ChoiceField()
    engagement = forms.ChoiceField(required=False)
    dataset = forms.ChoiceField(required=False)
    kind = forms.ChoiceField(choices=ObligationKind.choices)
    days_after_end = forms.IntegerField(
        required=False, min_value=0, label="Days after the engagement ends"
    )
    retain_until = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Retain until"
    )
    retain_years = forms.IntegerField(required=False, min_value=1, label="Retain for (years)")
    source = forms.ChoiceField(choices=ObligationSource.choices)
    source_reference = forms.CharField(
        max_length=300, required=False, help_text="Clause, DPA section or regulation article."
    )

    def __init__(
        self,
        *args: Any,
        clients: Any = (),
        engagements: Any = (),
        datasets: Any = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "client", list(clients))
        _choices(self, "engagement", [("", "—"), *engagements])
        _choices(self, "dataset", [("", "—"), *datasets])


class TokenForm(forms.Form):
    client = forms.ChoiceField()
    name = forms.CharField(max_length=100, help_text="Who holds it, e.g. 'ACME procurement'.")
    expires_at = forms.DateTimeField(
        label="Expires",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="At most 366 days from now.",
    )

    def __init__(self, *args: Any, clients: Any = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "client", list(clients))


class ProcessingRecordForm(forms.Form):
    processor_contact = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), label="Processor's contact"
    )
    processor_representative = forms.CharField(
        max_length=300, required=False, label="Processor's representative (Art. 27)"
    )
    processor_dpo = forms.CharField(
        max_length=300, required=False, label="Processor's data protection officer"
    )
    controller_contact = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Controller's contact",
        help_text="Empty: the client's contact name and e-mail.",
    )
    controller_representative = forms.CharField(
        max_length=300, required=False, label="Controller's representative"
    )
    controller_dpo = forms.CharField(
        max_length=300, required=False, label="Controller's data protection officer"
    )
    processing_categories = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Categories of processing",
        help_text="One per line.",
    )
    transfers = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="Transfers to third countries",
        help_text="One per line: country | recipient | safeguard | documentation. Safeguards: "
        + ", ".join(SAFEGUARDS)
        + ".",
    )
    security_measures = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 4}), label="Security measures"
    )

    def categories(self) -> list[str]:
        text = self.cleaned_data.get("processing_categories", "")
        return [line.strip() for line in text.splitlines() if line.strip()]

    def transfer_rows(self) -> list[dict[str, str]]:
        names = ("country", "recipient", "safeguard", "documentation")
        rows = []
        for line in self.cleaned_data.get("transfers", "").splitlines():
            if line.strip():
                parts = [p.strip() for p in line.split("|")]
                rows.append(dict(zip(names, parts + [""] * (4 - len(parts)), strict=False)))
        return rows


class DeletionSettingsForm(forms.Form):
    approvals_required = forms.TypedChoiceField(
        coerce=int,
        choices=[(n, f"{n} approver{'s' if n > 1 else ''}") for n in APPROVAL_CHOICES],
        widget=forms.RadioSelect,
        label="Approvals a deletion needs",
        help_text="Never the requester: one other admin (four eyes) or two (six eyes).",
    )


class EngagementEndForm(forms.Form):
    ended_on = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        label="Ended on",
        help_text="Empty: today.",
    )


class EvidenceOpenForm(forms.Form):
    token = forms.CharField(
        max_length=200,
        label="Procurement token",
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
        help_text="The token the agency gave you (it starts with aop_).",
    )
