from django.urls import path

from backups import views

urlpatterns = [
    path("datasets/<uuid:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<uuid:dataset_id>/backup/", views.dataset_backup, name="dataset-backup"),
    path("datasets/<uuid:dataset_id>/restore/", views.dataset_restore, name="dataset-restore"),
    path("datasets/<uuid:dataset_id>/policy/", views.dataset_policy, name="dataset-policy"),
    path("backup-runs/<uuid:run_id>/progress/", views.run_progress, name="run-progress"),
]
