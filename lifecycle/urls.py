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
]
