"""Whatever JSON arrives at a write route, the answer is 2xx or 4xx — never a 500."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.agencyops.test_api_access import ROUTES
from tests.conftest import World

FIELDS = [
    "name",
    "slug",
    "status",
    "contact_email",
    "client",
    "engagement",
    "location",
    "kind",
    "classification",
    "contains_personal_data",
    "source",
    "path",
    "owner",
    "rpo",
    "rto",
    "lifecycle_state",
    "provider",
    "endpoint_url",
    "region",
    "bucket",
    "prefix",
    "credentials",
    "grantee",
    "dataset",
    "permission",
    "reason",
    "expires_at",
    "starts_on",
    "ends_on",
    "deletion_due_days",
    "username",
    "email",
    "password",
    "role",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "../x",
            "/abs",
            "\x00",
            "P1D",
            "25:00:00",
            "2026-13-40",
            "owner",
            "00000000-0000-0000-0000-000000000000",
        ]
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
WRITES = [(name, method) for name, route in ROUTES.items() for method in route.writes]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=st.sampled_from(WRITES), body=bodies)
def test_random_json_never_causes_a_server_error(
    w: World, as_user: Any, case: tuple[str, str], body: dict[str, Any]
) -> None:
    name, method = case
    url = ROUTES[name].url(w)
    response = getattr(as_user(w.owner), method.lower())(url, body, format="json")
    assert response.status_code < 500, (name, body, response.content)
    if response.status_code >= 400:
        assert "detail" in response.json()
