from django.urls import path

from lifecycle import views

urlpatterns = [
    # The home page: client health across the apps (clients cannot import lifecycle, so it
    # lives here).
    path("", views.dashboard, name="dashboard"),
    path(
        "alerts/<uuid:alert_id>/acknowledge/",
        views.alert_acknowledge_page,
        name="alert-acknowledge-page",
    ),
    path(
        "clients/<uuid:client_id>/access-log/",
        views.client_access_log,
        name="client-access-log",
    ),
    path(
        "datasets/<uuid:dataset_id>/access-log/",
        views.dataset_access_log,
        name="dataset-access-log",
    ),
    path("deletions/", views.deletion_queue, name="deletion-queue"),
    path(
        "deletions/<uuid:request_id>/",
        views.deletion_request_detail,
        name="deletion-request-page",
    ),
    path(
        "deletions/<uuid:request_id>/certificate/",
        views.deletion_certificate_page,
        name="deletion-certificate-page",
    ),
    path(
        "clients/<uuid:client_id>/evidence/",
        views.client_evidence_page,
        name="client-evidence-page",
    ),
    path(
        "engagements/<uuid:engagement_id>/end/",
        views.engagement_end_page,
        name="engagement-end-page",
    ),
]
