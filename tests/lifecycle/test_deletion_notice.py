"""Issue #12, part 9, as the attack it stops: a CR/LF in a client name made the deletion notice
fail silently (`send_mail(..., fail_silently=True)`). Every e-mail now goes through the alert
delivery path (claimed once, retried with backoff) and unsafe header characters are removed from
subjects, never a silent drop."""

from __future__ import annotations

from typing import Any

from backups.models import Alert, AlertDelivery, AlertKind, AlertState
from backups.services.notifications import header_safe
from clients.models import Client
from lifecycle import services
from tests.backups.conftest import Agency, agency, new_agency, sample_files
from tests.factories import UserFactory
from tests.s3server import s3_endpoint

__all__ = ["agency", "new_agency", "s3_endpoint"]  # fixtures


def test_a_line_break_in_a_client_name_still_notifies_every_admin_once(
    agency: Agency, mailoutbox: Any, django_capture_on_commit_callbacks: Any
) -> None:
    Client.objects.filter(pk=agency.client.pk).update(
        name="Acme\r\nBcc: attacker@evil.test\u2028Health"
    )
    agency.client.refresh_from_db()
    agency.admin.email = "admin@agency.test"
    agency.admin.save()
    second = UserFactory(username="second-admin", email="second@agency.test")
    from clients import services as clients_services

    clients_services.membership_add(actor=agency.actor, user=second, role="admin")
    dataset = agency.dataset("Raw", files=sample_files())

    with django_capture_on_commit_callbacks(execute=True):
        request = services.deletion_request_create(
            actor=agency.actor, client=agency.client, dataset=dataset, reason="contract ended"
        )
    (mail,) = mailoutbox
    expected = "[AgencyOps] Deletion awaiting approval: Acme Bcc: attacker@evil.test Health"
    assert mail.subject == expected
    assert "\r" not in mail.subject
    assert "\n" not in mail.subject
    assert mail.bcc == []
    assert "attacker@evil.test" not in mail.to
    assert {"admin@agency.test", "second@agency.test"} <= set(mail.to)
    (delivery,) = AlertDelivery.objects.filter(alert__kind=AlertKind.DELETION_AWAITING)
    assert delivery.sent_at is not None
    assert delivery.error == ""

    from kernel.tenancy import actor_for_user

    second_actor = actor_for_user(second)
    assert second_actor is not None
    with django_capture_on_commit_callbacks(execute=True):
        services.deletion_request_approve(actor=second_actor, request=request, enqueue=False)
    assert len(mailoutbox) == 2
    assert mailoutbox[1].subject.startswith("[AgencyOps] Resolved: Deletion awaiting approval")
    assert Alert.objects.get(pk=delivery.alert_id).state == AlertState.RESOLVED


def test_header_safe_removes_every_unsafe_character() -> None:
    assert header_safe("a\r\nb\tc\x00d\x85e\u2028f\u2029g\x7fh") == "a b c d e f g h"
