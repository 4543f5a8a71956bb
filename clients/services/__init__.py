"""Every write to the inventory. Each service checks the actor's right, validates, and saves.

Split by sub-domain (inventory, locations, spaces, members, grants, tokens; common: what they
share, such as `UNCHANGED`, the default of an update's arguments); the public names are
re-exported here.
Services raise ApplicationError subclasses; Django ValidationErrors from `full_clean()` carry
field messages and are mapped to 400 by the API's exception handler.
"""

from clients.services.common import UNCHANGED, Unchanged
from clients.services.grants import (
    OrphanPermission,
    grant_create,
    grant_permission_orphans,
    grant_permission_orphans_remove,
    grant_request_approve,
    grant_request_create,
    grant_request_reject,
    grant_revoke,
    grant_sync_permissions,
    grants_expire,
)
from clients.services.inventory import (
    client_create,
    client_update,
    dataset_register,
    dataset_update,
    engagement_create,
    engagement_end_record,
    engagement_update,
)
from clients.services.invitations import (
    InvitationUnusable,
    invitation_accept,
    invitation_for_token,
    invitation_send,
)
from clients.services.locations import (
    CREDENTIALS_PURPOSE,
    location_create,
    location_credentials,
    location_update,
)
from clients.services.members import (
    USERNAME_UNAVAILABLE,
    member_create,
    membership_add,
    membership_set_role,
    organization_create,
    require_may_add,
    user_create,
    username_problem,
    username_twin_get,
)
from clients.services.preferences import user_time_zone, user_time_zone_set
from clients.services.spaces import (
    client_space,
    client_space_check,
    database_path_check,
    namespace_assign,
    namespace_remove,
    other_dataset_overlapping,
    path_within,
    paths_overlap,
    relative_path_clean,
)
from clients.services.tokens import (
    TOKEN_PREFIX,
    api_token_authenticate,
    api_token_issue,
    api_token_revoke,
    token_hash,
)

__all__ = [
    "CREDENTIALS_PURPOSE",
    "TOKEN_PREFIX",
    "UNCHANGED",
    "USERNAME_UNAVAILABLE",
    "InvitationUnusable",
    "OrphanPermission",
    "Unchanged",
    "api_token_authenticate",
    "api_token_issue",
    "api_token_revoke",
    "client_create",
    "client_space",
    "client_space_check",
    "client_update",
    "database_path_check",
    "dataset_register",
    "dataset_update",
    "engagement_create",
    "engagement_end_record",
    "engagement_update",
    "grant_create",
    "grant_permission_orphans",
    "grant_permission_orphans_remove",
    "grant_request_approve",
    "grant_request_create",
    "grant_request_reject",
    "grant_revoke",
    "grant_sync_permissions",
    "grants_expire",
    "invitation_accept",
    "invitation_for_token",
    "invitation_send",
    "location_create",
    "location_credentials",
    "location_update",
    "member_create",
    "membership_add",
    "membership_set_role",
    "namespace_assign",
    "namespace_remove",
    "organization_create",
    "other_dataset_overlapping",
    "path_within",
    "paths_overlap",
    "relative_path_clean",
    "require_may_add",
    "token_hash",
    "user_create",
    "user_time_zone",
    "user_time_zone_set",
    "username_problem",
    "username_twin_get",
]
