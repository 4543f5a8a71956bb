from django.urls import path

from lifecycle.pages import access_log, dashboard, deletions, evidence, holds, settings

urlpatterns = [
    # The home page: client health across the apps (clients cannot import lifecycle, so it
    # lives here).
    path("", dashboard.dashboard, name="dashboard"),
    path(
        "alerts/<uuid:alert_id>/acknowledge/",
        dashboard.alert_acknowledge_page,
        name="alert-acknowledge-page",
    ),
    path(
        "clients/<uuid:client_id>/access-log/",
        access_log.client_access_log,
        name="client-access-log",
    ),
    path(
        "datasets/<uuid:dataset_id>/access-log/",
        access_log.dataset_access_log,
        name="dataset-access-log",
    ),
    # --- deletions ---
    path("deletions/", deletions.deletion_queue, name="deletion-queue"),
    path("deletions/new/", deletions.deletion_request_new, name="deletion-request-new"),
    path(
        "deletions/<uuid:request_id>/",
        deletions.deletion_request_detail,
        name="deletion-request-page",
    ),
    path(
        "deletions/<uuid:request_id>/certificate/",
        evidence.deletion_certificate_page,
        name="deletion-certificate-page",
    ),
    path(
        "deletions/<uuid:request_id>/certificate.json",
        evidence.deletion_certificate_json,
        name="deletion-certificate-json",
    ),
    path(
        "deletions/<uuid:request_id>/certificate.pdf",
        evidence.deletion_certificate_pdf,
        name="deletion-certificate-pdf",
    ),
    path(
        "engagements/<uuid:engagement_id>/end/",
        deletions.engagement_end_page,
        name="engagement-end-page",
    ),
    # --- evidence (also the procurement token holder's) ---
    path(
        "clients/<uuid:client_id>/evidence/",
        evidence.client_evidence_page,
        name="client-evidence-page",
    ),
    path(
        "clients/<uuid:client_id>/evidence.json",
        evidence.client_evidence_json,
        name="client-evidence-json",
    ),
    path(
        "clients/<uuid:client_id>/evidence.pdf",
        evidence.client_evidence_pdf,
        name="client-evidence-pdf",
    ),
    path("evidence/open/", evidence.evidence_open, name="evidence-open"),
    # --- settings an owner or admin keeps ---
    path("settings/holds/", holds.hold_list, name="hold-list"),
    path("settings/holds/new/", holds.hold_new, name="hold-new"),
    path(
        "settings/holds/<uuid:hold_id>/release/",
        holds.hold_release,
        name="hold-release",
    ),
    path("settings/obligations/", settings.obligation_list, name="obligation-list"),
    path("settings/obligations/new/", settings.obligation_new, name="obligation-new"),
    path("settings/procurement-tokens/", settings.token_list, name="token-list"),
    path("settings/procurement-tokens/new/", settings.token_new, name="token-new"),
    path(
        "settings/procurement-tokens/<uuid:token_id>/revoke/",
        settings.token_revoke,
        name="token-revoke",
    ),
    path("settings/processing-record/", settings.processing_record, name="processing-record"),
    path("settings/deletions/", settings.deletion_settings, name="deletion-settings"),
]
