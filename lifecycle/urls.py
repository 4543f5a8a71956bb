from django.urls import path

from lifecycle import views

urlpatterns = [
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
        "engagements/<uuid:engagement_id>/end/",
        views.engagement_end_page,
        name="engagement-end-page",
    ),
]
