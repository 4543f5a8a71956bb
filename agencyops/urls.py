"""Root URLs: pages, the versioned API router, the OpenAPI schema, admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from agencyops.signin import ThrottledAdminLoginView, ThrottledLoginView
from backups import api as backups_api
from clients import api as clients_api
from lifecycle import api as lifecycle_api

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.include_format_suffixes = False
router.register("clients", clients_api.ClientViewSet, basename="client")
# The lifecycle app extends the engagement endpoint with "end".
router.register("engagements", lifecycle_api.EngagementViewSet, basename="engagement")
router.register("locations", clients_api.LocationViewSet, basename="location")
router.register("namespaces", clients_api.NamespaceViewSet, basename="namespace")
# The backups app extends the inventory's dataset endpoint with its policy and actions.
router.register("datasets", backups_api.DatasetViewSet, basename="dataset")
router.register("grants", clients_api.GrantViewSet, basename="grant")
router.register("grant-requests", clients_api.GrantRequestViewSet, basename="grant-request")
router.register("members", clients_api.MembershipViewSet, basename="member")
router.register("tokens", clients_api.TokenViewSet, basename="token")
router.register("policies", backups_api.PolicyViewSet, basename="policy")
router.register("backup-runs", backups_api.BackupRunViewSet, basename="backup-run")
router.register("snapshots", backups_api.SnapshotViewSet, basename="snapshot")
router.register("restores", backups_api.RestoreRunViewSet, basename="restore")
router.register("access-events", lifecycle_api.AccessEventViewSet, basename="access-event")
router.register("obligations", lifecycle_api.ObligationViewSet, basename="obligation")
router.register("legal-holds", lifecycle_api.LegalHoldViewSet, basename="legal-hold")
router.register(
    "deletion-requests", lifecycle_api.DeletionRequestViewSet, basename="deletion-request"
)
router.register("signing-key", lifecycle_api.SigningKeyViewSet, basename="signing-key")
# --- posture audits and fixes ---
router.register("posture-audits", backups_api.PostureAuditViewSet, basename="posture-audit")
router.register("posture-fixes", backups_api.PostureFixViewSet, basename="posture-fix")
# --- protection status (3-2-1) and cost ---
router.register("protection", backups_api.ProtectionViewSet, basename="protection")
router.register("costs", backups_api.CostViewSet, basename="cost")
# --- alerts, reviews, notification settings ---
router.register("alerts", backups_api.AlertViewSet, basename="alert")
router.register("reviews", backups_api.ReviewViewSet, basename="review")
router.register(
    "notification-settings",
    backups_api.NotificationSettingsViewSet,
    basename="notification-settings",
)
# --- restore drills ---
router.register("drills", backups_api.DrillViewSet, basename="drill")
# --- procurement evidence ---
router.register(
    r"clients/(?P<client_id>[^/.]+)/evidence",
    lifecycle_api.EvidenceViewSet,
    basename="client-evidence",
)
router.register(
    r"clients/(?P<client_id>[^/.]+)/evidence-tokens",
    lifecycle_api.EvidenceTokenViewSet,
    basename="evidence-token",
)
router.register("evidence/schema", lifecycle_api.EvidenceSchemaViewSet, basename="evidence-schema")
# Unknown API paths answer the API's JSON error shape, like every other API 404.
handler404 = "kernel.api.not_found_handler"

urlpatterns = [
    path(
        "api/v1/access-events/export.csv",
        lifecycle_api.AccessEventViewSet.as_view({"get": "export"}),
        name="access-event-export",
    ),
    # One price table per organization, read and written whole: no detail route.
    path(
        "api/v1/storage-prices/",
        backups_api.StoragePriceViewSet.as_view(
            {"get": "list", "put": "update", "patch": "partial_update"}
        ),
        name="storage-price-list",
    ),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    # Ahead of the admin's own login route: the admin signs in under /login/'s throttle.
    path("admin/login/", ThrottledAdminLoginView.as_view(), name="admin-login"),
    path("admin/", admin.site.urls),
    path(
        "login/",
        ThrottledLoginView.as_view(),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("clients.urls")),
    path("", include("backups.urls")),
    path("", include("lifecycle.urls")),
]
