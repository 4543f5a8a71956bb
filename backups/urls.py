from django.urls import path

from backups import views
from backups.pages import locations_test

urlpatterns = [
    path("datasets/<uuid:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<uuid:dataset_id>/backup/", views.dataset_backup, name="dataset-backup"),
    path(
        "datasets/<uuid:dataset_id>/exports/",
        views.dataset_export_upload,
        name="dataset-export-upload",
    ),
    path("datasets/<uuid:dataset_id>/restore/", views.dataset_restore, name="dataset-restore"),
    path("datasets/<uuid:dataset_id>/policy/", views.dataset_policy, name="dataset-policy"),
    path("backup-runs/<uuid:run_id>/progress/", views.run_progress, name="run-progress"),
    # --- posture audits ---
    path("locations/<uuid:location_id>/posture/", views.location_posture, name="location-posture"),
    path(
        "locations/<uuid:location_id>/posture/audit/",
        views.location_posture_audit,
        name="location-posture-audit",
    ),
    path(
        "locations/<uuid:location_id>/posture/fix/",
        views.location_posture_fix,
        name="location-posture-fix",
    ),
    # The settings' "test connection" (the location list is the clients app's page).
    path(
        "settings/locations/<uuid:location_id>/test/",
        locations_test.location_test,
        name="location-test",
    ),
    # --- restore drills ---
    path("datasets/<uuid:dataset_id>/drill/", views.dataset_drill, name="dataset-drill"),
    path("datasets/<uuid:dataset_id>/runbook/", views.dataset_runbook, name="dataset-runbook"),
]
