"""Every API route, enumerated from the URL resolver, against every kind of caller: owner,
admin, a lead granted a client, a lead granted one dataset, a member, an auditor, a lead whose
grant expired, a lead without grants, a procurement token, another organization, anonymous.

A route missing from ROUTES fails `test_every_api_route_is_covered`, so a new endpoint cannot
ship without its access rules being pinned here (and KINDS gives it a row for every caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import World


@dataclass(frozen=True)
class Route:
    url: Callable[[World], str]
    reads: tuple[str, ...] = ("GET",)
    writes: tuple[str, ...] = ()
    # "client": the object belongs to client_b (nobody granted) -> ungranted lead gets 404.
    # "list": a collection; outsiders get 200 without the target object in it.
    # "admin": organization administration; leads are refused with 403.
    # "admin-list": an administration collection: 403 for leads, 200 without the target for
    #   another organization's admin (they see their own).
    # "own": the caller's own objects (tokens): others' objects are 404.
    # "org": organization-wide configuration (policies): every member reads it, only admins
    #   write it; another organization gets 404.
    scope: str = "client"
    # the public id that must never leak to an outsider through a list
    target: Callable[[World], str] | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    # whether test_owner_reads_everything can read it from the world's rows alone
    owner_reads: bool = True


def _id(obj: Any) -> str:
    return str(obj.public_id)


ROUTES: dict[str, Route] = {
    "client-list": Route(
        lambda w: "/api/v1/clients/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.client_b),
    ),
    "client-detail": Route(lambda w: f"/api/v1/clients/{_id(w.client_b)}/", writes=("PATCH",)),
    "engagement-list": Route(
        lambda w: "/api/v1/engagements/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.engagement),
    ),
    "engagement-detail": Route(
        lambda w: f"/api/v1/engagements/{_id(w.engagement_b)}/", writes=("PATCH",)
    ),
    "location-list": Route(
        lambda w: "/api/v1/locations/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.dedicated_location),
    ),
    "location-detail": Route(
        lambda w: f"/api/v1/locations/{_id(w.dedicated_location)}/", writes=("PATCH",)
    ),
    "dataset-list": Route(
        lambda w: "/api/v1/datasets/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.dataset_b),
    ),
    "dataset-detail": Route(lambda w: f"/api/v1/datasets/{_id(w.dataset_b)}/", writes=("PATCH",)),
    "grant-list": Route(
        lambda w: "/api/v1/grants/", writes=("POST",), scope="list", target=lambda w: _id(w.grant_b)
    ),
    "grant-detail": Route(lambda w: f"/api/v1/grants/{_id(w.grant_b)}/"),
    "grant-revoke": Route(
        lambda w: f"/api/v1/grants/{_id(w.grant_b)}/revoke/", reads=(), writes=("POST",)
    ),
    "grant-request-list": Route(
        lambda w: "/api/v1/grant-requests/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.grant_request_b),
    ),
    "grant-request-detail": Route(lambda w: f"/api/v1/grant-requests/{_id(w.grant_request_b)}/"),
    "grant-request-approve": Route(
        lambda w: f"/api/v1/grant-requests/{_id(w.grant_request_b)}/approve/",
        reads=(),
        writes=("POST",),
    ),
    "grant-request-reject": Route(
        lambda w: f"/api/v1/grant-requests/{_id(w.grant_request_b)}/reject/",
        reads=(),
        writes=("POST",),
    ),
    "access-event-list": Route(
        lambda w: "/api/v1/access-events/", scope="list", target=lambda w: _id(w.event_b)
    ),
    "access-event-export": Route(
        lambda w: "/api/v1/access-events/export.csv",
        scope="list",
        target=lambda w: _id(w.event_b),
    ),
    # The whole chain's report: organization-wide roles only (leads 403); another
    # organization's admin verifies their own chain.
    "access-event-verify": Route(
        lambda w: "/api/v1/access-events/verify/",
        scope="admin-list",
        target=lambda w: w.org.slug,
    ),
    "member-list": Route(
        lambda w: "/api/v1/members/",
        writes=("POST",),
        scope="admin-list",
        target=lambda w: _id(w.admin.membership),
    ),
    "member-detail": Route(
        lambda w: f"/api/v1/members/{_id(w.admin.membership)}/", writes=("PATCH",), scope="admin"
    ),
    "dataset-backup": Route(
        lambda w: f"/api/v1/datasets/{_id(w.dataset_b)}/backup/", reads=(), writes=("POST",)
    ),
    # A SaaS dataset's export upload (multipart; an empty body is the 400 past the checks).
    "dataset-exports": Route(
        lambda w: f"/api/v1/datasets/{_id(w.dataset_b)}/exports/", reads=(), writes=("POST",)
    ),
    "policy-list": Route(
        lambda w: "/api/v1/policies/",
        writes=("POST",),
        scope="org-list",
        target=lambda w: _id(w.policy),
    ),
    "policy-detail": Route(
        lambda w: f"/api/v1/policies/{_id(w.policy)}/", writes=("PATCH",), scope="org"
    ),
    "backup-run-list": Route(
        lambda w: "/api/v1/backup-runs/", scope="list", target=lambda w: _id(w.run_b)
    ),
    "backup-run-detail": Route(lambda w: f"/api/v1/backup-runs/{_id(w.run_b)}/"),
    "snapshot-list": Route(
        lambda w: "/api/v1/snapshots/", scope="list", target=lambda w: _id(w.snapshot_b)
    ),
    "snapshot-detail": Route(lambda w: f"/api/v1/snapshots/{_id(w.snapshot_b)}/"),
    # An owner's successful download needs a real repository: tests/backups/test_download.py.
    "snapshot-download": Route(
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_b)}/download/?path=README.md",
        owner_reads=False,
    ),
    "snapshot-restore": Route(
        lambda w: f"/api/v1/snapshots/{_id(w.snapshot_b)}/restore/", reads=(), writes=("POST",)
    ),
    "restore-list": Route(
        lambda w: "/api/v1/restores/", scope="list", target=lambda w: _id(w.restore_b)
    ),
    "restore-detail": Route(lambda w: f"/api/v1/restores/{_id(w.restore_b)}/"),
    "token-list": Route(
        lambda w: "/api/v1/tokens/", writes=("POST",), scope="list", target=lambda w: _id(w.token)
    ),
    "token-detail": Route(lambda w: f"/api/v1/tokens/{_id(w.token)}/", scope="own"),
    # Client folders on shared locations: admins assign and remove them; leads see their
    # granted clients' folders only.
    "namespace-list": Route(
        lambda w: "/api/v1/namespaces/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.namespace_b),
    ),
    "namespace-detail": Route(
        lambda w: f"/api/v1/namespaces/{_id(w.namespace_b)}/", writes=("DELETE",)
    ),
    "engagement-end": Route(
        lambda w: f"/api/v1/engagements/{_id(w.engagement_b)}/end/", reads=(), writes=("POST",)
    ),
    "obligation-list": Route(
        lambda w: "/api/v1/obligations/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.obligation_b),
    ),
    "obligation-detail": Route(
        lambda w: f"/api/v1/obligations/{_id(w.obligation_b)}/", writes=("PATCH", "DELETE")
    ),
    "legal-hold-list": Route(
        lambda w: "/api/v1/legal-holds/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.hold_b),
    ),
    "legal-hold-detail": Route(lambda w: f"/api/v1/legal-holds/{_id(w.hold_b)}/"),
    "legal-hold-release": Route(
        lambda w: f"/api/v1/legal-holds/{_id(w.hold_b)}/release/", reads=(), writes=("POST",)
    ),
    "deletion-request-list": Route(
        lambda w: "/api/v1/deletion-requests/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.deletion_request_b),
    ),
    "deletion-request-detail": Route(
        lambda w: f"/api/v1/deletion-requests/{_id(w.deletion_request_b)}/"
    ),
    "deletion-request-approve": Route(
        lambda w: f"/api/v1/deletion-requests/{_id(w.deletion_request_b)}/approve/",
        reads=(),
        writes=("POST",),
    ),
    "deletion-request-reject": Route(
        lambda w: f"/api/v1/deletion-requests/{_id(w.deletion_request_b)}/reject/",
        reads=(),
        writes=("POST",),
    ),
    "deletion-request-certificate": Route(
        lambda w: f"/api/v1/deletion-requests/{_id(w.deletion_request_b)}/certificate/"
    ),
    # The organization's public key: every member reads their own organization's.
    "signing-key-list": Route(
        lambda w: "/api/v1/signing-key/", scope="org-list", target=lambda w: w.signing_key
    ),
    "token-revoke": Route(
        lambda w: f"/api/v1/tokens/{_id(w.token)}/revoke/", reads=(), writes=("POST",), scope="own"
    ),
    # --- posture audits and fixes ---
    # Audits and fixes are read like their location (client B's dedicated bucket: admins only);
    # auditing now and fixing are admin writes (leads 403, an empty body 400).
    "posture-audit-list": Route(
        lambda w: "/api/v1/posture-audits/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.posture_audit_b),
    ),
    "posture-audit-detail": Route(lambda w: f"/api/v1/posture-audits/{_id(w.posture_audit_b)}/"),
    "posture-fix-list": Route(
        lambda w: "/api/v1/posture-fixes/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.posture_fix_b),
    ),
    "posture-fix-detail": Route(lambda w: f"/api/v1/posture-fixes/{_id(w.posture_fix_b)}/"),
    # --- protection status (3-2-1) and cost ---
    "protection-list": Route(
        lambda w: "/api/v1/protection/", scope="list", target=lambda w: _id(w.dataset_b)
    ),
    # client B's line of the estimate (its snapshot stores 0 bytes, still listed)
    "cost-list": Route(lambda w: "/api/v1/costs/", scope="list", target=lambda w: _id(w.client_b)),
    # Every member reads the organization's price table; only admins write it.
    "storage-price-list": Route(
        lambda w: "/api/v1/storage-prices/",
        writes=("PUT", "PATCH"),
        scope="org-list",
        target=lambda w: _id(w.storage_price),
    ),
    # --- alerts, reviews, notification settings ---
    "alert-list": Route(lambda w: "/api/v1/alerts/", scope="list", target=lambda w: _id(w.alert_b)),
    "alert-detail": Route(lambda w: f"/api/v1/alerts/{_id(w.alert_b)}/"),
    "alert-acknowledge": Route(
        lambda w: f"/api/v1/alerts/{_id(w.alert_b)}/acknowledge/", reads=(), writes=("POST",)
    ),
    "review-list": Route(
        lambda w: "/api/v1/reviews/",
        writes=("POST",),
        scope="list",
        target=lambda w: _id(w.review_b),
    ),
    # One per organization, owners and admins only; another organization's admin reads and
    # writes their own (an empty PUT or test POST is refused on validation).
    "notification-settings-list": Route(
        lambda w: "/api/v1/notification-settings/",
        writes=("PUT",),
        scope="admin-list",
        target=lambda w: _id(w.notification_settings),
    ),
    "notification-settings-test": Route(
        lambda w: "/api/v1/notification-settings/test/",
        reads=(),
        writes=("POST",),
        scope="admin-list",
    ),
    # --- restore drills ---
    # Drills follow their dataset's client grants; starting and reviewing is for admins (a
    # lead's POST to the list is refused with 403, the review of an unseen drill is a 404).
    "drill-list": Route(
        lambda w: "/api/v1/drills/", writes=("POST",), scope="list", target=lambda w: _id(w.drill_b)
    ),
    "drill-detail": Route(lambda w: f"/api/v1/drills/{_id(w.drill_b)}/"),
    # The whole client project as of a week ago: client B's, named in the body.
    "drill-project": Route(
        lambda w: "/api/v1/drills/project/",
        reads=(),
        writes=("POST",),
        scope="list",
    ),
    "drill-review": Route(
        lambda w: f"/api/v1/drills/{_id(w.drill_b)}/review/", reads=(), writes=("POST",)
    ),
    # --- procurement evidence ---
    # The signed evidence and the record of processing of client B (leads need a grant on
    # the whole client; PATCH is for admins). Procurement tokens: tests/lifecycle/
    # test_evidence_tokens.py enumerates every route for them.
    "client-evidence-list": Route(lambda w: f"/api/v1/clients/{_id(w.client_b)}/evidence/"),
    "client-evidence-processing-record": Route(
        lambda w: f"/api/v1/clients/{_id(w.client_b)}/evidence/processing-record/",
        writes=("PATCH",),
    ),
    # Procurement tokens of client B: owners and admins issue and revoke, auditors read;
    # leads get 403, another organization 404 (client B is not theirs).
    "evidence-token-list": Route(
        lambda w: f"/api/v1/clients/{_id(w.client_b)}/evidence-tokens/",
        writes=("POST",),
        scope="admin",
        target=lambda w: _id(w.evidence_token_b),
    ),
    "evidence-token-detail": Route(
        lambda w: f"/api/v1/clients/{_id(w.client_b)}/evidence-tokens/{_id(w.evidence_token_b)}/",
        scope="admin",
        target=lambda w: _id(w.evidence_token_b),
    ),
    "evidence-token-revoke": Route(
        lambda w: (
            f"/api/v1/clients/{_id(w.client_b)}/evidence-tokens/{_id(w.evidence_token_b)}/revoke/"
        ),
        reads=(),
        writes=("POST",),
        scope="admin",
    ),
    # The evidence's JSON Schema: the same document for every member of every organization,
    # so nothing of organization A may appear in it (the owner's read is in test_evidence.py).
    "evidence-schema-list": Route(
        lambda w: "/api/v1/evidence/schema/",
        scope="list",
        target=lambda w: _id(w.client_b),
        owner_reads=False,
    ),
}


def api_patterns() -> list[tuple[str, str]]:
    """(name, route) of every URL pattern under api/v1/, from the URL resolver; the route is
    the patterns' own text joined (regex or path syntax)."""
    found: list[tuple[str, str]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern).lstrip("^")
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/v1/"):
                found.append((pattern.name or route, route))

    walk(get_resolver().url_patterns, "")
    return found


def _api_route_names() -> set[str]:
    return {name for name, _ in api_patterns()}


def test_every_api_route_is_covered() -> None:
    assert _api_route_names() == set(ROUTES)


def _call(client: Any, method: str, url: str) -> Any:
    response = getattr(client, method.lower())(url, data={}, format="json")
    if response.streaming:  # the CSV export: read it whole so assertions see its body
        response.content_bytes = b"".join(response.streaming_content)
    return response


def _body(response: Any) -> str:
    raw: bytes | None = getattr(response, "content_bytes", None)
    body: bytes = raw if raw is not None else response.content
    return body.decode()


CASES = [
    (name, method) for name, route in ROUTES.items() for method in (*route.reads, *route.writes)
]


@pytest.mark.parametrize(("name", "method"), CASES)
def test_anonymous_gets_401(w: World, as_user: Any, name: str, method: str) -> None:
    response = _call(as_user(None), method, ROUTES[name].url(w))
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("name", "method"), CASES)
def test_other_organization_gets_404_or_nothing(
    w: World, as_user: Any, name: str, method: str
) -> None:
    route = ROUTES[name]
    response = _call(as_user(w.other_admin), method, route.url(w))
    if route.scope in ("list", "admin-list", "org-list"):
        if method == "GET":
            assert response.status_code == 200
            assert route.target is not None
            assert route.target(w) not in _body(response)
        else:
            # Creating in one's own organization with an empty body: refused on validation,
            # never touching organization A.
            assert response.status_code in (400, 201), response.content
    else:
        assert response.status_code == 404, response.content


@pytest.mark.parametrize(("name", "method"), CASES)
def test_ungranted_lead_gets_404_or_nothing(w: World, as_user: Any, name: str, method: str) -> None:
    route = ROUTES[name]
    response = _call(as_user(w.ungranted_lead), method, route.url(w))
    if route.scope in ("client", "own"):
        assert response.status_code == 404, response.content
    elif route.scope in ("admin", "admin-list"):
        assert response.status_code == 403, response.content
    elif route.scope in ("org", "org-list"):
        assert response.status_code == (200 if method == "GET" else 403), response.content
        if method == "GET" and route.target is not None:
            assert route.target(w) in _body(response)
    elif method == "GET":
        assert response.status_code == 200
        assert route.target is not None
        assert route.target(w) not in _body(response)
    else:
        assert response.status_code in (400, 403, 201), response.content


WRITE_CASES = [(name, method) for name, route in ROUTES.items() for method in route.writes]


@pytest.mark.parametrize(("name", "method"), WRITE_CASES)
def test_auditor_cannot_write(w: World, as_user: Any, name: str, method: str) -> None:
    route = ROUTES[name]
    url = route.url(w)
    if route.scope == "own":
        # the auditor's own token, so that only the role can refuse
        from clients import services

        token, _ = services.api_token_issue(user=w.auditor)
        url = url.replace(_id(w.token), _id(token))
    response = _call(as_user(w.auditor), method, url)
    assert response.status_code == 403, response.content
    assert "read-only" in response.json()["detail"]


READ_CASES = [
    (name, "GET") for name, route in ROUTES.items() if "GET" in route.reads and route.owner_reads
]


@pytest.mark.parametrize(("name", "method"), READ_CASES)
def test_owner_reads_everything(w: World, as_user: Any, name: str, method: str) -> None:
    route = ROUTES[name]
    response = _call(as_user(w.owner), method, route.url(w))
    assert response.status_code == 200, response.content
    if route.target is not None:
        assert route.target(w) in _body(response)


# --- a lead whose one grant is on another dataset of client B ---

# What such a lead still sees of client B beside its dataset: the client (its name, so the
# dataset can be shown under it) and the location dedicated to client B that the dataset lives
# on (with that location's posture). Everything else of client B is a sibling's or client-wide.
DATASET_LEAD_SEES = frozenset(
    {
        "client-detail",
        "client-list",
        "location-detail",
        "location-list",
        "posture-audit-detail",
        "posture-audit-list",
        "posture-fix-detail",
        "posture-fix-list",
    }
)


def _dataset_lead(w: World) -> Any:
    """A lead granted `manage` on one new dataset of client B, and on nothing else."""
    from clients import services
    from kernel.tenancy import Actor
    from tests.factories import DatasetFactory, UserFactory

    system = Actor.system(w.org)
    w.dataset_b_granted = DatasetFactory(client=w.client_b, location=w.dedicated_location)
    lead = UserFactory(username="dataset-lead")
    services.membership_add(actor=system, user=lead, role="lead")
    services.grant_create(
        actor=system,
        grantee=lead,
        client=w.client_b,
        dataset=w.dataset_b_granted,
        permission="manage",
        reason="one dataset of client B",
    )
    return lead


@pytest.fixture
def dataset_lead(w: World) -> Any:
    return _dataset_lead(w)


GET_CASES = [(name, "GET") for name, route in ROUTES.items() if "GET" in route.reads]


@pytest.mark.parametrize(("name", "method"), GET_CASES)
def test_a_lead_granted_one_dataset_sees_nothing_of_its_siblings(
    w: World, as_user: Any, dataset_lead: Any, name: str, method: str
) -> None:
    route = ROUTES[name]
    response = _call(as_user(dataset_lead), method, route.url(w))
    if route.scope == "client":
        expected = 200 if name in DATASET_LEAD_SEES else 404
        assert response.status_code == expected, (name, response.content[:300])
    elif route.scope in ("admin", "admin-list"):
        assert response.status_code == 403, response.content
    elif route.scope == "own":
        assert response.status_code == 404, response.content
    else:
        assert response.status_code == 200, response.content
        if route.target is not None and route.scope == "list":
            seen = route.target(w) in _body(response)
            assert seen == (name in DATASET_LEAD_SEES), (name, _body(response)[:300])


# --- every kind of actor over every route, from one table ---

# Every kind of caller, each answered on every route by the rule of its role and grants. The
# tests above pin the outsiders in detail; this table holds all of them side by side, so a kind
# whose answers drift (a grant that expired still read, a member seeing the access log) fails
# on the route that drifted, and a new route gets a row for every kind at once.

GETS = frozenset(name for name, route in ROUTES.items() if "GET" in route.reads)
# GET routes whose answer is checked for the route's target (client B's row, or the owner's
# token, or organization A's own configuration)
TARGETED = frozenset(name for name in GETS if ROUTES[name].target is not None)
CLIENT_B_GETS = frozenset(name for name in GETS if ROUTES[name].scope == "client")
ADMIN_GETS = frozenset(name for name in GETS if ROUTES[name].scope in ("admin", "admin-list"))
ORG_LISTS = frozenset(name for name in GETS if ROUTES[name].scope == "org-list")
# The caller's own API tokens: nobody else, admins included, lists or reads them.
OWN_GETS = frozenset(name for name in GETS if ROUTES[name].scope == "own")
# Never any organization's object: the same document for everyone.
NOBODYS = frozenset({"evidence-schema-list"})
# Grants and grant requests are read by admins, auditors and the person they are about (the
# world's grant of client B is the member's; its grant request is the lead of client A's).
GRANT_DETAILS = frozenset({"grant-detail", "grant-request-detail"})
GRANT_LISTS = frozenset({"grant-list", "grant-request-list"})
# What a procurement token of client B reads (tests/lifecycle/test_evidence_tokens.py pins
# the other methods too); every other route answers 404, as if it did not exist.
PROCUREMENT_READS = frozenset(
    {
        "client-evidence-list",
        "deletion-request-certificate",
        "evidence-schema-list",
        "signing-key-list",
    }
)
# Reading a file of client B's snapshot: client B's bucket holds no credentials, so whoever
# may download is told the copy cannot be read now (409), never a server error.
DOWNLOAD = "snapshot-download"


def _answers(**by_status: frozenset[str]) -> dict[str, int]:
    """{route: status} from `s403=routes, s404=routes, …`."""
    return {name: int(key[1:]) for key, names in by_status.items() for name in names}


def _write_refusal(scope: str, *, sees_client_b: bool) -> frozenset[int]:
    """How a write is refused to a caller without the right to make it: 404 on what it cannot
    see, 403 on what it sees but may not change, and on a collection either 403 or a 400 for
    the empty body (creating needs a client the caller chooses; none is given)."""
    if scope == "own":
        return frozenset({404})
    if scope == "client":
        return frozenset({403 if sees_client_b else 404})
    if scope == "list":
        return frozenset({400, 403})
    return frozenset({403})


@dataclass(frozen=True)
class Kind:
    """One kind of caller: its status on each GET route (200 unless named), the GET routes whose
    answer shows the route's target, and the status of its writes (None: its writes succeed
    and are pinned by each app's tests)."""

    reads: dict[str, int]
    sees: frozenset[str]
    writes: Callable[[str, Route], frozenset[int]] | None = None


def _lead_without_grants_writes(name: str, route: Route) -> frozenset[int]:
    return _write_refusal(route.scope, sees_client_b=False)


def _dataset_lead_writes(name: str, route: Route) -> frozenset[int]:
    return _write_refusal(route.scope, sees_client_b=name in DATASET_LEAD_SEES)


def _member_writes(name: str, route: Route) -> frozenset[int]:
    # The member holds `view` on client B: it sees client B's rows and changes none; a grant
    # request it did not make stays unseen.
    if name in ("grant-request-approve", "grant-request-reject"):
        return frozenset({404})
    return _write_refusal(route.scope, sees_client_b=True)


def _other_organization_writes(name: str, route: Route) -> frozenset[int]:
    if route.scope in ("list", "admin-list", "org-list"):
        return frozenset({400, 201})  # in its own organization, refused on the empty body
    return frozenset({404})


WITHOUT_GRANTS = Kind(
    reads=_answers(s403=ADMIN_GETS, s404=CLIENT_B_GETS | OWN_GETS),
    sees=ORG_LISTS,
    writes=_lead_without_grants_writes,
)

KINDS: dict[str, Kind] = {
    "owner": Kind(reads=_answers(s409=frozenset({DOWNLOAD})), sees=TARGETED - NOBODYS),
    "admin": Kind(
        reads=_answers(s404=OWN_GETS, s409=frozenset({DOWNLOAD})),
        sees=TARGETED - NOBODYS - {"token-list"},
    ),
    # A lead granted `manage` on the whole of client B.
    "client_lead": Kind(
        reads=_answers(s403=ADMIN_GETS, s404=OWN_GETS | GRANT_DETAILS, s409=frozenset({DOWNLOAD})),
        sees=TARGETED - NOBODYS - ADMIN_GETS - GRANT_LISTS - {"token-list", "engagement-list"},
    ),
    "dataset_lead": Kind(
        reads=_answers(s403=ADMIN_GETS, s404=(CLIENT_B_GETS - DATASET_LEAD_SEES) | OWN_GETS),
        sees=ORG_LISTS | (TARGETED & DATASET_LEAD_SEES),
        writes=_dataset_lead_writes,
    ),
    # A member: `view` on client B (its grant is the world's grant_b), `restore` on client A.
    # Members read neither the access log nor the evidence, and download nothing with `view`.
    "member": Kind(
        reads=_answers(
            s403=ADMIN_GETS
            | {
                "access-event-list",
                "access-event-export",
                "client-evidence-list",
                "client-evidence-processing-record",
                DOWNLOAD,
            },
            s404=OWN_GETS | {"grant-request-detail"},
        ),
        sees=TARGETED
        - NOBODYS
        - ADMIN_GETS
        - {"token-list", "grant-request-list", "access-event-list", "access-event-export"},
        writes=_member_writes,
    ),
    # Reads the whole organization but its notification settings (a webhook secret) and data.
    "auditor": Kind(
        reads=_answers(s403=frozenset({DOWNLOAD, "notification-settings-list"}), s404=OWN_GETS),
        sees=TARGETED - NOBODYS - {"token-list", "notification-settings-list"},
        writes=lambda name, route: frozenset({403}),
    ),
    "ungranted_lead": WITHOUT_GRANTS,
    # A lead whose grant on client B expired a moment ago: its guardian rows are still there
    # (the sweep has not run), and it reads exactly what a lead without grants reads.
    "expired_lead": WITHOUT_GRANTS,
    "procurement": Kind(
        reads=_answers(s404=GETS - PROCUREMENT_READS),
        sees=frozenset({"signing-key-list"}),
        writes=lambda name, route: frozenset({404}),
    ),
    "other_organization": Kind(
        reads=_answers(
            s404=frozenset(
                n for n in GETS if ROUTES[n].scope not in ("list", "admin-list", "org-list")
            )
        ),
        sees=frozenset(),
        writes=_other_organization_writes,
    ),
    "anonymous": Kind(
        reads=_answers(s401=GETS), sees=frozenset(), writes=lambda name, route: frozenset({401})
    ),
}


def _caller(kind: str, w: World, as_user: Any) -> Any:
    """An API client of that kind, with the users and grants it needs added to the world."""
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework.test import APIClient

    from clients import services
    from clients.models import AccessGrant
    from kernel.tenancy import Actor
    from lifecycle.services import evidence_token_issue
    from tests.factories import UserFactory

    system = Actor.system(w.org)
    if kind in ("client_lead", "expired_lead"):
        lead = UserFactory(username=kind.replace("_", "-"))
        services.membership_add(actor=system, user=lead, role="lead")
        grant = services.grant_create(
            actor=system, grantee=lead, client=w.client_b, permission="manage", reason=kind
        )
        if kind == "expired_lead":
            AccessGrant.objects.filter(pk=grant.pk).update(
                expires_at=timezone.now() - timedelta(seconds=1)
            )
        return as_user(lead)
    if kind == "dataset_lead":
        return as_user(_dataset_lead(w))
    if kind == "procurement":
        _, raw = evidence_token_issue(
            actor=system,
            client=w.client_b,
            name="client B procurement",
            expires_at=timezone.now() + timedelta(days=30),
        )
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
        return client
    users = {
        "owner": w.owner,
        "admin": w.admin,
        "member": w.member,
        "auditor": w.auditor,
        "ungranted_lead": w.ungranted_lead,
        "other_organization": w.other_admin,
        "anonymous": None,
    }
    return as_user(users[kind])


def _walk(client: Any, method: str, url: str) -> Any:
    """One call whose writes are undone, so every route sees the same world."""
    from django.db import transaction

    with transaction.atomic():
        response = _call(client, method, url)
        transaction.set_rollback(True)
    return response


def test_the_table_of_kinds_names_only_routes_of_the_matrix() -> None:
    for kind in KINDS.values():
        assert set(kind.reads) <= GETS
        assert kind.sees <= TARGETED


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_of_caller_on_every_route(w: World, as_user: Any, kind: str) -> None:
    expected = KINDS[kind]
    client = _caller(kind, w, as_user)
    wrong: list[tuple[str, str, int, Any]] = []
    for name, route in ROUTES.items():
        url = route.url(w)
        if "GET" in route.reads:
            response = _walk(client, "GET", url)
            status = expected.reads.get(name, 200)
            if response.status_code != status:
                wrong.append((name, "GET", response.status_code, status))
            elif status == 200 and route.target is not None:
                seen = route.target(w) in _body(response)
                if seen != (name in expected.sees):
                    wrong.append((name, "GET", 200, "target shown" if seen else "target missing"))
        if expected.writes is None:
            continue
        for method in route.writes:
            response = _walk(client, method, url)
            allowed = expected.writes(name, route)
            if response.status_code not in allowed:
                wrong.append((name, method, response.status_code, sorted(allowed)))
    assert wrong == [], wrong
