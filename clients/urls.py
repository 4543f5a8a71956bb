from django.urls import path

from clients import views

urlpatterns = [
    path("clients/<uuid:client_id>/", views.client_detail, name="client-detail"),
    path(
        "clients/<uuid:client_id>/datasets/new/",
        views.dataset_register_page,
        name="dataset-register",
    ),
]
