"""Root URLs: pages, the versioned API router, the OpenAPI schema, admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

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
# --- protection status (3-2-1) and cost ---
# --- alerts, reviews, notification settings ---
# --- restore drills ---
# --- procurement evidence ---

urlpatterns = [
    path(
        "api/v1/access-events/export.csv",
        lifecycle_api.AccessEventViewSet.as_view({"get": "export"}),
        name="access-event-export",
    ),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("clients.urls")),
    path("", include("backups.urls")),
    path("", include("lifecycle.urls")),
]
