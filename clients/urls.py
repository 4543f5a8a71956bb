from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from clients.pages import access, inventory, locations, members, settings

urlpatterns = [
    path("clients/new/", inventory.client_new, name="client-new"),
    path("clients/<uuid:client_id>/", inventory.client_detail, name="client-detail"),
    path("clients/<uuid:client_id>/edit/", inventory.client_edit, name="client-edit"),
    path(
        "clients/<uuid:client_id>/engagements/new/",
        inventory.engagement_new,
        name="engagement-new",
    ),
    path(
        "clients/<uuid:client_id>/datasets/new/",
        inventory.dataset_register_page,
        name="dataset-register",
    ),
    # --- settings ---
    path("settings/", settings.settings_index, name="settings-index"),
    path("settings/locations/", locations.location_list, name="location-list"),
    path("settings/locations/new/", locations.location_new, name="location-new"),
    path(
        "settings/locations/<uuid:location_id>/edit/",
        locations.location_edit,
        name="location-edit",
    ),
    path("settings/members/", members.member_list, name="member-list"),
    path("settings/members/invite/", members.member_invite, name="member-invite"),
    path("settings/members/<uuid:membership_id>/role/", members.member_role, name="member-role"),
    path("settings/access/", access.grant_list, name="grant-list"),
    path("settings/access/new/", access.grant_new, name="grant-new"),
    path("settings/access/<uuid:grant_id>/revoke/", access.grant_revoke, name="grant-revoke"),
    path("settings/access/requests/", access.grant_request_list, name="grant-request-list"),
    path(
        "settings/access/requests/<uuid:grant_request_id>/decide/",
        access.grant_request_decide,
        name="grant-request-decide",
    ),
    # Public: the one-time link of an invitation e-mail (the invitee is not signed in).
    path("invitations/<str:token>/", members.invitation_accept, name="invitation-accept"),
    # --- one's own account ---
    path("account/", settings.account, name="account"),
    path(
        "account/password/",
        auth_views.PasswordChangeView.as_view(success_url=reverse_lazy("password-change-done")),
        name="password-change",
    ),
    path(
        "account/password/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password-change-done",
    ),
]
