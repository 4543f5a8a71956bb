"""Alert notices and where they go: an e-mail to the dataset owner and the organization's
owners/admins, plus an optional webhook (a chat tool's incoming webhook).

The notices of an alert event are AlertDelivery rows recorded in the alert's transaction and
sent right after its commit, in the same process. Each delivery is claimed by a conditional
update before it is sent, so a retried task or the periodic retry never sends it twice; a
failed send is retried with backoff. The webhook URL is sealed under the master key and never
logged or returned.

A webhook is a URL the tenant chose, so it is reached only where the egress policy allows
(kernel.egress): checked when saved, and every POST connects through the guarded connect,
follows no redirect, and waits at most WEBHOOK_TIMEOUT_SECONDS. What the tenant is told of a
failure is one sentence for every cause (refused, closed, silent, an error status), so neither
the test button nor a delivery's error tells a scanner what listens behind an address; the
cause goes to the server log only.

Split by concern: `deliveries` (recording, claiming, sending, retrying), `channels` (one e-mail
or webhook POST, and the test notice), `messages` (what a notice says), `org_settings` (the
organization's settings). Public names here.
"""

from backups.services.notifications.channels import (
    WEBHOOK_NOT_REACHABLE,
    WEBHOOK_TIMEOUT_SECONDS,
    DeliveryFailed,
    NotificationTest,
    WebhookUnreachable,
    notification_settings_test,
)
from backups.services.notifications.deliveries import (
    MAX_DELIVERY_ATTEMPTS,
    RETRY_AFTER,
    REVIEW_KINDS,
    _deliveries_create,
    alert_deliveries_retry,
    alert_deliveries_send,
)
from backups.services.notifications.messages import WHAT_TO_DO, alert_payload, header_safe
from backups.services.notifications.org_settings import (
    notification_settings_get,
    notification_settings_update,
    webhook_host,
)

__all__ = [
    "MAX_DELIVERY_ATTEMPTS",
    "RETRY_AFTER",
    "REVIEW_KINDS",
    "WEBHOOK_NOT_REACHABLE",
    "WEBHOOK_TIMEOUT_SECONDS",
    "WHAT_TO_DO",
    "DeliveryFailed",
    "NotificationTest",
    "WebhookUnreachable",
    "_deliveries_create",
    "alert_deliveries_retry",
    "alert_deliveries_send",
    "alert_payload",
    "header_safe",
    "notification_settings_get",
    "notification_settings_test",
    "notification_settings_update",
    "webhook_host",
]
