from django.urls import path

from backups import views
from backups.pages import assurance as assurance_pages
from backups.pages import locations_test, restore
from backups.pages import policies as policy_pages
from backups.pages import settings as settings_pages

urlpatterns = [
    path("datasets/<uuid:dataset_id>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/<uuid:dataset_id>/backup/", views.dataset_backup, name="dataset-backup"),
    path(
        "datasets/<uuid:dataset_id>/exports/",
        views.dataset_export_upload,
        name="dataset-export-upload",
    ),
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
    # --- restore: the snapshot browser, one file's download, point-in-time restores ---
    path("datasets/<uuid:dataset_id>/restore/", restore.dataset_restore, name="dataset-restore"),
    path("snapshots/<uuid:snapshot_id>/", restore.snapshot_browse, name="snapshot-browse"),
    path(
        "snapshots/<uuid:snapshot_id>/download/",
        restore.snapshot_download,
        name="snapshot-download",
    ),
    path("restores/<uuid:restore_id>/progress/", restore.restore_progress, name="restore-progress"),
    # --- settings: policies and targets, storage prices, notifications ---
    path("settings/policies/", policy_pages.policy_list, name="policy-list"),
    path("settings/policies/new/", policy_pages.policy_new, name="policy-new"),
    path(
        "settings/policies/<uuid:policy_id>/edit/",
        policy_pages.policy_edit,
        name="policy-edit",
    ),
    path("settings/prices/", settings_pages.price_list, name="price-list"),
    path(
        "settings/notifications/",
        settings_pages.notification_settings,
        name="notification-settings",
    ),
    path(
        "settings/notifications/test/",
        settings_pages.notification_test,
        name="notification-test",
    ),
    # --- assurance: alert centre, costs, copy map ---
    path("alerts/", assurance_pages.alert_list, name="alert-list"),
    path("costs/", assurance_pages.cost_overview, name="cost-overview"),
    path(
        "datasets/<uuid:dataset_id>/copies/",
        assurance_pages.dataset_copy_map,
        name="dataset-copy-map",
    ),
]
