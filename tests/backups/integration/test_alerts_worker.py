"""A real worker's failing backup notifies from the task that noticed it.

The worker is another process, so Django's test outbox cannot see its mail: it uses the
file-based e-mail backend (a directory this test reads) and POSTs to this test's webhook server
on loopback. No beat runs, so nothing but the backup task itself can have sent them.
"""

from __future__ import annotations

from email import message_from_string
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from backups.models import AlertDelivery, AlertState, BackupRun, RunStatus, Trigger
from backups.services import backup_run_create
from backups.services.notifications import notification_settings_update
from backups.tasks import backup_run_task
from tests.backups.conftest import Agency
from tests.backups.integration.support import Cluster
from tests.backups.test_alerts import SECRET_PATH, WebhookServer

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_a_worker_whose_backup_fails_sends_the_mail_and_the_webhook_itself(
    agency: Agency, cluster: Cluster, tmp_path: Path
) -> None:
    webhook = WebhookServer()
    mail_dir = tmp_path / "mail"
    cluster.env["EMAIL_BACKEND"] = "django.core.mail.backends.filebased.EmailBackend"
    cluster.env["EMAIL_FILE_PATH"] = str(mail_dir)
    try:
        notification_settings_update(actor=agency.actor, webhook_url=webhook.url)
        # Registered without files: its source directory does not exist, a failure that no
        # retry can fix, so the task's first attempt is its final one.
        dataset = agency.dataset("Project files")
        target = agency.local_location("Target")
        run = backup_run_create(
            dataset=dataset, trigger=Trigger.MANUAL, targets=[target], enqueue=False
        )
        cluster.start_worker("worker")
        cluster.publish(backup_run_task, str(run.public_id))

        cluster.wait_for(
            lambda: BackupRun.objects.filter(pk=run.pk, status=RunStatus.FAILED).first(),
            60,
            "the run to fail",
        )
        cluster.wait_for(lambda: webhook.posts, 30, "the worker's webhook POST")
        cluster.wait_for(lambda: list(mail_dir.glob("*.log")), 30, "the worker's e-mail")

        assert len(webhook.posts) == 1
        assert webhook.posts[0]["path"] == SECRET_PATH
        body = webhook.posts[0]["body"]
        assert body["alert"]["kind"] == "backup_failed"
        assert body["alert"]["state"] == AlertState.OPEN
        assert "Backup failed: Project files → Target" in body["text"]
        mails = list(mail_dir.glob("*.log"))
        assert len(mails) == 1
        mail = message_from_string(mails[0].read_text())
        subject = str(make_header(decode_header(mail["Subject"])))
        assert subject == "[AgencyOps] Backup failed: Project files → Target"
        # the dataset's owner (the admin who registered it), then the organization's owner
        assert mail["To"] == "agency-admin@example.test, agency-owner@example.test"
        assert "no objects under 'datasets/project-files'" in mail.get_payload()
        deliveries = AlertDelivery.objects.filter(alert__dataset=dataset)
        assert sorted(deliveries.values_list("channel", "attempts")) == [
            ("email", 1),
            ("webhook", 1),
        ]
        assert not deliveries.filter(sent_at__isnull=True).exists()
        assert "Task backups.tasks.backup_run_task" in cluster.logs()
        assert SECRET_PATH not in cluster.logs()
    finally:
        webhook.close()
