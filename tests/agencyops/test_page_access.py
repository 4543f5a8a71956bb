"""Every page, enumerated from the URL resolver, against every kind of signed-in user and the
callers who are not: what each answers (200, the action's answer, 403, 404, or a redirect to
the login page), and that no page shows a row the caller may not see.

The inventory has two clients of organization A; client B has two datasets, one of them
granted to a lead alone (`dataset_lead`); organization B has its own. Every name, title and
reason carries a marker of what it belongs to (`mark-b2`: the sibling dataset), and each
caller has the set of markers it may see: any other marker in any answer is a leak. A page
missing from PAGES, or a path parameter the inventory cannot fill, fails
`test_every_page_is_covered`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client as PageClient
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from backups.models import BackupPolicy, PolicyTarget, RestoreRun
from clients import services as clients_services
from clients.models import AccessGrant
from kernel.tenancy import Actor, actor_for_user
from lifecycle.services import (
    access_event_payload,
    access_events_append,
    deletion_certificate_issue,
    evidence_token_issue,
)
from tests.factories import (
    AlertFactory,
    BackupRunFactory,
    ClientFactory,
    DatasetFactory,
    DeletionRequestFactory,
    EngagementFactory,
    LegalHoldFactory,
    LocationFactory,
    MembershipFactory,
    ObligationFactory,
    OrganizationFactory,
    SnapshotFactory,
    UserFactory,
)

# What each row belongs to, written into its name, title or reason.
ORG_A = "mark-orga"  # organization A itself and its shared bucket: every member sees them
A = "mark-a"  # client A and everything of it
B = "mark-bname"  # client B itself and its dedicated bucket (its datasets live there)
B1 = "mark-b1"  # client B's dataset granted to the dataset lead, and its rows
B2 = "mark-b2"  # client B's other dataset, the sibling, and its rows
B_WIDE = "mark-bwide"  # client B's client-wide rows: engagement, hold, deletion, alert
FOREIGN = "mark-foreign"  # organization B and everything of it
MARKERS = (ORG_A, A, B, B1, B2, B_WIDE, FOREIGN)

# Levels a caller holds on what it sees: a page needs one of them.
SEE, RESTORE, MANAGE, ADMIN = 1, 2, 3, 4


@dataclass(frozen=True)
class Caller:
    """A kind of caller: the level it holds on the rows of each marker it may see (none:
    not signed in, every page redirects to the login page)."""

    levels: dict[str, int]
    role: str = ""
    # markers seen only through a grant on one dataset: a page about the whole client is 404
    through_a_dataset: frozenset[str] = frozenset()
    # A procurement token: the client it reads on the pages that take a token (Page.token),
    # and the markers that client's evidence shows. Every other page: not signed in.
    token_client: str | None = None
    token_sees: frozenset[str] = frozenset()

    @property
    def signed_in(self) -> bool:
        return bool(self.levels)


_ORGANIZATION_A = (ORG_A, A, B, B1, B2, B_WIDE)
CALLERS: dict[str, Caller] = {
    "owner": Caller(dict.fromkeys(_ORGANIZATION_A, ADMIN), role="owner"),
    "admin": Caller(dict.fromkeys(_ORGANIZATION_A, ADMIN), role="admin"),
    # reads the whole organization, changes nothing
    "auditor": Caller(dict.fromkeys(_ORGANIZATION_A, SEE), role="auditor"),
    # `manage` on the whole of client B
    "client_lead": Caller({ORG_A: SEE, **dict.fromkeys((B, B1, B2, B_WIDE), MANAGE)}, "lead"),
    # `manage` on dataset B1 alone: client B and its bucket are shown, to place the dataset
    "dataset_lead": Caller(
        {ORG_A: SEE, B: SEE, B1: MANAGE}, role="lead", through_a_dataset=frozenset({B})
    ),
    # `restore` on client A
    "member": Caller({ORG_A: SEE, A: RESTORE}, role="member"),
    # `manage` on client B, expired a second ago (before the sweep removed its permissions)
    "expired_lead": Caller({ORG_A: SEE}, role="lead"),
    "ungranted_lead": Caller({ORG_A: SEE}, role="lead"),
    # an admin of organization B
    "other_organization": Caller({FOREIGN: ADMIN}, role="admin"),
    # A procurement token of client B (the Authorization header). Deliberately changed when the
    # evidence pages learned to take a token (issue 16): the printable evidence of client B,
    # its PDF and its signed JSON answer it (200), another client's answer 404 as in the API;
    # every other page still takes no token, so there it is not signed in (the login page).
    "procurement": Caller({}, token_client=B, token_sees=frozenset({ORG_A, B, B1, B2, B_WIDE})),
    "anonymous": Caller({}),
}


@dataclass(frozen=True)
class Page:
    """A page: the inventory kind of its path parameter (None: no parameter), its method,
    the level it needs on its object, and what a caller holding that level gets."""

    param: str | None
    method: str = "GET"
    needs: int = SEE
    done: int = 200
    members: bool = True  # False: the member role is refused (403) whatever it sees
    whole_client: bool = False  # True: a client seen through one dataset's grant is 404
    roles: frozenset[str] | None = None  # a page without an object: only these roles (else 403)
    public: bool = False  # True: answers callers who are not signed in too
    token: bool = False  # True: a procurement token opens it for its own client


ADMINS = frozenset({"owner", "admin"})
READS_ORGANIZATION = frozenset({"owner", "admin", "auditor"})


# POST pages are sent an empty form: who may act gets the redirect after the action (an
# error of state is a message on the next page) or, where the form has required fields, 400.
PAGES: dict[str, Page] = {
    "dashboard": Page(None),
    "deletion-queue": Page(None),
    "client-detail": Page("client"),
    "dataset-register": Page("client", needs=MANAGE),
    "client-access-log": Page("client", members=False),
    "client-evidence-page": Page("client", members=False, whole_client=True, token=True),
    "dataset-detail": Page("dataset"),
    "dataset-runbook": Page("dataset"),
    "dataset-access-log": Page("dataset", members=False),
    "dataset-backup": Page("dataset", "POST", needs=MANAGE, done=302),
    "dataset-export-upload": Page("dataset", "POST", needs=MANAGE, done=302),
    "dataset-restore": Page("dataset", "POST", needs=RESTORE, done=400),
    "dataset-policy": Page("dataset", "POST", needs=MANAGE, done=302),
    "dataset-drill": Page("dataset", "POST", needs=ADMIN, done=302),
    "run-progress": Page("run"),
    # browsing a snapshot decrypts its file list: the restore level, like a download
    "snapshot-browse": Page("snapshot", needs=RESTORE),
    "snapshot-download": Page("snapshot", needs=RESTORE, done=400),  # no ?path=
    "restore-progress": Page("restore"),
    "location-posture": Page("location"),
    "location-posture-audit": Page("location", "POST", needs=ADMIN, done=302),
    "location-posture-fix": Page("location", "POST", needs=ADMIN, done=302),
    "deletion-request-page": Page("request"),
    "deletion-request-new": Page(None),
    "deletion-certificate-page": Page("request"),
    "deletion-certificate-json": Page("request"),
    "deletion-certificate-pdf": Page("request"),
    "client-evidence-json": Page("client", members=False, whole_client=True, token=True),
    "client-evidence-pdf": Page("client", members=False, whole_client=True, token=True),
    "evidence-open": Page(None, public=True),
    "hold-list": Page(None),
    "hold-new": Page(None, roles=ADMINS),
    "hold-release": Page("hold", "POST", needs=ADMIN, done=302),
    "obligation-list": Page(None),
    "obligation-new": Page(None, roles=ADMINS),
    "token-list": Page(None, roles=READS_ORGANIZATION),
    "token-new": Page(None, roles=ADMINS),
    "token-revoke": Page("token", "POST", needs=ADMIN, done=302, whole_client=True),
    "processing-record": Page(None, roles=ADMINS),
    "deletion-settings": Page(None, roles=ADMINS),
    # leads acknowledge the alerts of what they manage; admins every alert
    "alert-acknowledge-page": Page("alert", "POST", needs=MANAGE, done=302),
    "engagement-end-page": Page("engagement", "POST", needs=ADMIN, done=302),
    # settings: every member reads policies and prices; owners and admins write them
    "policy-list": Page(None),
    "policy-new": Page(None, roles=ADMINS),
    "policy-edit": Page("policy", needs=ADMIN),
    "price-list": Page(None),
    "notification-settings": Page(None, roles=ADMINS),
    "notification-test": Page(None, "POST", done=302, roles=ADMINS),
    # assurance: the alert centre and costs show what the caller sees; the copy map its dataset
    "alert-list": Page(None),
    "cost-overview": Page(None),
    "dataset-copy-map": Page("dataset"),
    # --- settings (clients.pages; the connection test is backups.pages) ---
    "settings-index": Page(None),
    "location-list": Page(None),
    "location-new": Page(None, roles=ADMINS),
    "location-edit": Page("location", needs=ADMIN),
    "location-test": Page("location", "POST", needs=ADMIN, done=302),
    "client-new": Page(None, roles=ADMINS),
    "client-edit": Page("client", needs=ADMIN),
    "engagement-new": Page("client", needs=ADMIN),
    "member-list": Page(None, roles=ADMINS | {"auditor"}),
    "member-invite": Page(None, roles=ADMINS),
    "member-role": Page("membership", "POST", needs=ADMIN, done=400),
    "grant-list": Page(None),  # everyone: their own grants; owners, admins, auditors: all
    "grant-new": Page(None, roles=ADMINS),
    "grant-revoke": Page("grant", "POST", needs=ADMIN, done=302),
    "grant-request-list": Page(None),  # everyone: their own requests
    "grant-request-decide": Page("grant_request", "POST", needs=ADMIN, done=400),
    "account": Page(None),
    "password-change": Page(None),
    "password-change-done": Page(None),
}

# Path parameters, by name, and the inventory kind that fills them.
PARAMETERS = {
    "client_id": "client",
    "dataset_id": "dataset",
    "run_id": "run",
    "snapshot_id": "snapshot",
    "restore_id": "restore",
    "location_id": "location",
    "request_id": "request",
    "alert_id": "alert",
    "engagement_id": "engagement",
    "policy_id": "policy",
    "membership_id": "membership",
    "grant_id": "grant",
    "grant_request_id": "grant_request",
    "hold_id": "hold",
    "token_id": "token",
}
# Kinds that belong to the organization itself, not to a client (members, policies every
# member reads): their only other owner is another organization.
ORGANIZATION_KINDS = frozenset({"membership", "policy"})
# Not pages of the app: the API (tests/agencyops/test_api_access.py), its schema and docs,
# Django's admin (tests/agencyops/test_admin.py), and signing in and out.
NOT_PAGES = ("api/", "admin/")
# invitation-accept is public: the invitee is not signed in yet, and the one-time token in its
# path is the whole credential (tested on its own in tests/clients/test_pages_settings.py:
# unknown, used, expired, replaced and accepted tokens).
AUTH_VIEWS = frozenset({"login", "logout", "invitation-accept"})


def page_patterns() -> list[tuple[str, URLPattern]]:
    """(name, pattern) of every page the URL resolver knows."""
    found: list[tuple[str, URLPattern]] = []

    def walk(patterns: list[Any], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif (
                isinstance(pattern, URLPattern)
                and not route.startswith(NOT_PAGES)
                and pattern.name not in AUTH_VIEWS
            ):
                found.append((pattern.name or route, pattern))

    walk(get_resolver().url_patterns, "")
    return found


def test_every_page_is_covered() -> None:
    patterns = dict(page_patterns())
    assert set(patterns) == set(PAGES)
    for name, pattern in patterns.items():
        params = list(pattern.pattern.converters)
        assert len(params) <= 1, name  # a page of two objects needs a filling of its own
        kinds = [PARAMETERS[param] for param in params]  # KeyError: a parameter nobody fills
        assert kinds == ([PAGES[name].param] if PAGES[name].param else []), name


# --- the inventory ---


@dataclass(frozen=True)
class Row:
    obj: Any
    marker: str  # what the row belongs to


def _mark(label: str, marker: str) -> str:
    return f"{label} {marker}"


def _dataset_rows(system: Actor, client: Any, location: Any, marker: str) -> dict[str, Row]:
    """A dataset and its rows: a failed run, a snapshot and a restore of it, an alert, an access
    event, a hold, an obligation, a verified deletion with its certificate and one awaiting
    approval."""
    dataset = DatasetFactory(client=client, location=location, name=_mark("Dataset", marker))
    run = BackupRunFactory(dataset=dataset, error=_mark("run failed", marker))
    snapshot = SnapshotFactory(run__dataset=dataset)
    restore = RestoreRun.objects.create(
        organization=dataset.organization,
        dataset=dataset,
        snapshot=snapshot,
        destination_location=location,
        destination_path=f"restores/{marker}",
        error=_mark("restore failed", marker),
    )
    alert = AlertFactory(dataset=dataset, title=_mark("Backup failed", marker))
    hold = LegalHoldFactory(client=client, dataset=dataset, reason=_mark("hold", marker))
    ObligationFactory(client=client, dataset=dataset, source_reference=_mark("clause", marker))
    request = DeletionRequestFactory(
        client=client, dataset=dataset, reason=_mark("deletion", marker)
    )
    deletion_certificate_issue(request)
    DeletionRequestFactory(
        client=client, dataset=dataset, state="drafted", reason=_mark("drafted", marker)
    )
    access_events_append(
        [
            access_event_payload(
                organization=client.organization,
                action="restore",
                actor=system,
                dataset=dataset,
                details={"about": marker},  # the log shows the details, not the dataset's name
            )
        ]
    )
    return {
        "dataset": Row(dataset, marker),
        "run": Row(run, marker),
        "snapshot": Row(snapshot, marker),
        "restore": Row(restore, marker),
        "alert": Row(alert, marker),
        "request": Row(request, marker),
        "hold": Row(hold, marker),
    }


def _organization(name: str, marker: str) -> Any:
    return OrganizationFactory(name=_mark(name, marker))


def _member(organization: Any, role: str, username: str) -> Any:
    user = UserFactory(username=username)
    MembershipFactory(organization=organization, user=user, role=role)
    return user


# S3 locations that point at a closed loopback port: whatever a page does with one (an audit),
# it never leaves the machine.
_NOWHERE = "http://127.0.0.1:9"


def _client_rows(
    organization: Any, client_marker: str, markers: tuple[str, ...], *, wide: str | None = None
) -> tuple[Any, dict[str, list[Row]]]:
    system = Actor.system(organization)
    client = ClientFactory(organization=organization, name=_mark("Client", client_marker))
    bucket = LocationFactory(
        organization=organization,
        client=client,
        name=_mark("Bucket", client_marker),
        endpoint_url=_NOWHERE,
    )
    rows: dict[str, list[Row]] = {
        "client": [Row(client, client_marker)],
        "location": [Row(bucket, client_marker)],
    }
    for marker in markers:
        for kind, row in _dataset_rows(system, client, bucket, marker).items():
            rows.setdefault(kind, []).append(row)
    wide = wide or client_marker
    engagement = EngagementFactory(client=client, name=_mark("Engagement", wide))
    rows["engagement"] = [Row(engagement, wide)]
    hold = LegalHoldFactory(client=client, reason=_mark("client-wide hold", wide))
    rows["hold"].append(Row(hold, wide))
    token, _ = evidence_token_issue(
        actor=system,
        client=client,
        name=_mark("token", client_marker),
        expires_at=timezone.now() + timedelta(days=30),
    )
    rows["token"] = [Row(token, client_marker)]
    request = DeletionRequestFactory(client=client, reason=_mark("client-wide deletion", wide))
    deletion_certificate_issue(request)
    rows["request"].append(Row(request, wide))
    alert = AlertFactory(client=client, dataset=None, title=_mark("client-wide alert", wide))
    rows["alert"].append(Row(alert, wide))
    return client, rows


def _policy(organization: Any, marker: str, targets: list[Any]) -> Any:
    policy = BackupPolicy.objects.create(
        organization=organization, name=_mark("Policy", marker), frequency="daily"
    )
    for position, location in enumerate(targets):
        PolicyTarget.objects.create(policy=policy, location=location, position=position)
    return policy
def _grant_request(user: Any, client: Any) -> Any:
    actor = actor_for_user(user)
    assert actor is not None
    return clients_services.grant_request_create(
        actor=actor, client=client, permission="view", reason="asks"
    )


@dataclass
class Inventory:
    rows: dict[str, list[Row]]  # inventory kind -> rows of every owner
    callers: dict[str, PageClient]


@pytest.fixture
def inventory(db: Any) -> Inventory:
    org = _organization("Agency", ORG_A)
    foreign_org = _organization("Agency", FOREIGN)
    shared = LocationFactory(
        organization=org, name=_mark("Shared bucket", ORG_A), endpoint_url=_NOWHERE
    )
    _, rows = _client_rows(org, A, (A,))
    client_b, rows_b = _client_rows(org, B, (B1, B2), wide=B_WIDE)
    _, foreign = _client_rows(foreign_org, FOREIGN, (FOREIGN,))
    for part in (rows_b, foreign):
        for kind, more in part.items():
            rows.setdefault(kind, []).extend(more)
    rows["location"].append(Row(shared, ORG_A))
    # Policies are organization-wide (every member reads them): one per organization. Org A's
    # also writes to client B's dedicated bucket, which a page must not name to those who do
    # not see client B.
    bucket_b = next(row.obj for row in rows["location"] if row.marker == B)
    foreign_bucket = next(row.obj for row in rows["location"] if row.marker == FOREIGN)
    rows["policy"] = [
        Row(_policy(org, ORG_A, [shared, bucket_b]), ORG_A),
        Row(_policy(foreign_org, FOREIGN, [foreign_bucket]), FOREIGN),
    ]
    dataset_b1 = next(row.obj for row in rows["dataset"] if row.marker == B1)
    client_a = next(row.obj for row in rows["client"] if row.marker == A)

    system = Actor.system(org)
    users = {
        "owner": _member(org, "owner", "owner"),
        "admin": _member(org, "admin", "admin"),
        "auditor": _member(org, "auditor", "auditor"),
        "client_lead": _member(org, "lead", "client-lead"),
        "dataset_lead": _member(org, "lead", "dataset-lead"),
        "member": _member(org, "member", "member"),
        "expired_lead": _member(org, "lead", "expired-lead"),
        "ungranted_lead": _member(org, "lead", "ungranted-lead"),
        "other_organization": _member(foreign_org, "admin", "other-admin"),
        "foreign_lead": _member(foreign_org, "lead", "foreign-lead"),
    }
    grants = (
        ("client_lead", client_b, None, "manage"),
        ("dataset_lead", client_b, dataset_b1, "manage"),
        ("member", client_a, None, "restore"),
        ("expired_lead", client_b, None, "manage"),
    )
    made = {
        kind: clients_services.grant_create(
            actor=system,
            grantee=users[kind],
            client=client,
            dataset=dataset,
            permission=permission,
            reason=kind,
        )
        for kind, client, dataset, permission in grants
    }
    # Expired a second ago, its guardian permissions still in place (the sweep has not run).
    AccessGrant.objects.filter(pk=made["expired_lead"].pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    foreign_client = next(row.obj for row in rows["client"] if row.marker == FOREIGN)
    foreign_grant = clients_services.grant_create(
        actor=Actor.system(foreign_org),
        grantee=users["foreign_lead"],
        client=foreign_client,
        permission="view",
        reason="foreign lead",
    )
    # A grant is seen by owners, admins, auditors and its grantee: each row's marker is one
    # only its grantee holds among the others (the member: A; the client lead: B_WIDE).
    rows["grant"] = [
        Row(made["member"], A),
        Row(made["client_lead"], B_WIDE),
        Row(foreign_grant, FOREIGN),
    ]
    rows["grant_request"] = [
        Row(_grant_request(users["member"], client_a), A),
        Row(_grant_request(users["client_lead"], client_b), B_WIDE),
        Row(_grant_request(users["foreign_lead"], foreign_client), FOREIGN),
    ]
    rows["membership"] = [
        Row(users["member"].membership, ORG_A),
        Row(users["other_organization"].membership, FOREIGN),
    ]
    callers: dict[str, PageClient] = {}
    for kind, user in users.items():
        if kind == "foreign_lead":
            continue  # a row's owner, not a caller of the matrix
        callers[kind] = PageClient()
        callers[kind].force_login(user)
    _, raw = evidence_token_issue(
        actor=system,
        client=client_b,
        name="procurement",
        expires_at=timezone.now() + timedelta(days=30),
    )
    callers["procurement"] = PageClient(HTTP_AUTHORIZATION=f"Bearer {raw}")
    callers["anonymous"] = PageClient()
    return Inventory(rows=rows, callers=callers)


# --- the matrix ---


def expected_status(page: Page, caller: Caller, marker: str | None) -> int:
    """The rule: not signed in, the login page; an object the caller does not see, 404; seen
    without the level the page needs (or by a role the page refuses), 403; else the page."""
    if page.token and caller.token_client is not None:
        return page.done if marker == caller.token_client else 404
    if page.public:
        return page.done
    if not caller.signed_in:
        return 302
    if marker is None:
        return 403 if page.roles is not None and caller.role not in page.roles else page.done
    level = caller.levels.get(marker)
    if level is None or (page.whole_client and marker in caller.through_a_dataset):
        return 404
    if level < page.needs or (not page.members and caller.role == "member"):
        return 403
    return page.done


def _targets(name: str, inventory: Inventory) -> Iterator[tuple[str, str | None]]:
    """(url, marker of its object) of every object of the page's kind, of every owner."""
    page = PAGES[name]
    if page.param is None:
        yield reverse(name), None
        return
    param = next(p for p, kind in PARAMETERS.items() if kind == page.param)
    for row in inventory.rows[page.param]:
        yield reverse(name, kwargs={param: row.obj.public_id}), row.marker


def _ask(client: PageClient, method: str, url: str) -> Any:
    """One request whose writes are undone, so every caller finds the same inventory."""
    with transaction.atomic():
        response = client.post(url, {}) if method == "POST" else client.get(url)
        transaction.set_rollback(True)
    return response


@pytest.mark.parametrize("name", sorted(PAGES))
def test_every_caller_on_every_page(inventory: Inventory, name: str) -> None:
    page = PAGES[name]

    # What each caller must never be shown: the markers it may not see, and the public ids of
    # the rows that carry them (links and references name rows by id).
    def sees(caller: Caller) -> set[str]:
        return set(caller.token_sees if page.token else ()) | set(caller.levels)

    hidden = {
        kind: [m for m in MARKERS if m not in sees(caller)]
        + [
            str(row.obj.public_id)
            for rows in inventory.rows.values()
            for row in rows
            if row.marker not in sees(caller)
        ]
        for kind, caller in CALLERS.items()
    }
    wrong: list[tuple[Any, ...]] = []
    for url, marker in _targets(name, inventory):
        for kind, caller in CALLERS.items():
            response = _ask(inventory.callers[kind], page.method, url)
            status = expected_status(page, caller, marker)
            if response.status_code != status:
                wrong.append((kind, url, marker, response.status_code, status))
                continue
            if status == 302 and not caller.signed_in and not (page.token or page.public):
                login = reverse("login")
                if not response["Location"].startswith(f"{login}?next="):
                    wrong.append((kind, url, "redirects to", response["Location"]))
            html = response.content.decode(errors="replace")  # PDFs too
            leaked = [m for m in hidden[kind] if m in html and m not in url]
            if leaked:
                wrong.append((kind, url, marker, "shows", leaked))
    assert wrong == [], wrong


def test_the_inventory_has_every_kind_of_owner(inventory: Inventory) -> None:
    # The matrix is only as good as its rows: each kind of object exists for the sibling and
    # another organization, so a page that leaks them has something to leak.
    for kind in {page.param for page in PAGES.values() if page.param}:
        markers = {row.marker for row in inventory.rows[kind]}
        assert FOREIGN in markers, kind
        if kind in ORGANIZATION_KINDS:
            assert ORG_A in markers, kind  # no client owns one
        else:
            assert markers & {B1, B2, B, B_WIDE}, kind
