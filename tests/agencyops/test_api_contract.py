"""The API's contract beyond the schema: every response under /api/ is JSON, never a server
error, for every method, on every route the URL resolver knows, and with a malformed value in
each of its path parameters. An outside fuzzer found `OPTIONS` on the two singleton routes
(notification settings, storage prices) answering 500; schemathesis only calls the
operations the schema lists, so OPTIONS and malformed ids are walked here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.agencyops.test_api_access import ROUTES, api_patterns
from tests.conftest import World

METHODS = ("OPTIONS", "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# Each a value no path parameter accepts: not a UUID, a dot the router's lookups exclude, a
# number where an id is a UUID, an encoded slash.
MALFORMED = ("0.5", "not-a-uuid", "1", "%2Fetc%2Fpasswd")
_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _templates() -> list[str]:
    """Every API URL pattern as a template: `{name}` where a parameter goes."""
    found = set()
    for _, route in api_patterns():
        template = _GROUP.sub(lambda m: "{" + m.group(1) + "}", route)
        template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", template)  # path() converters
        found.add("/" + template.rstrip("$").replace("/?", "/").replace("\\.", "."))
    return sorted(found)


TEMPLATES = [t for t in _templates() if "{" in t and "{format}" not in t]


def _is_json_error(response: Any) -> bool:
    if not response["Content-Type"].startswith("application/json"):
        return False
    if response.status_code < 400:
        return True
    body = response.json()
    return isinstance(body, dict) and {"detail", "code"} <= set(body)


def test_the_walk_finds_the_routes_with_parameters() -> None:
    # The walk must see the router's detail routes and the nested evidence routes, or the
    # malformed-id test below would pass over nothing.
    assert "/api/v1/clients/{id}/" in TEMPLATES
    assert "/api/v1/clients/{client_id}/evidence-tokens/{id}/revoke/" in TEMPLATES
    assert len(TEMPLATES) >= 39  # the routes with a parameter today


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_options_answers_json_on_every_route(w: World, as_user: Any, name: str) -> None:
    response = as_user(w.owner).options(ROUTES[name].url(w))
    assert response.status_code < 500, (name, response.content)
    assert response["Content-Type"].startswith("application/json"), name
    if response.status_code == 200:
        assert response.json()["name"], name


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_malformed_path_parameter_answers_the_json_error_shape(
    w: World, as_user: Any, template: str
) -> None:
    client = as_user(w.owner)
    for value in MALFORMED:
        url = re.sub(r"\{\w+\}", value, template)
        for method in METHODS:
            response = getattr(client, method.lower())(url, data={}, format="json")
            if response.streaming:
                b"".join(response.streaming_content)
            assert response.status_code < 500, (method, url, response.content)
            if method == "OPTIONS" and response.status_code == 200:
                continue  # a description of the route, with nothing of any object in it
            assert response.status_code >= 400, (method, url, response.status_code)
            if method != "HEAD":
                assert _is_json_error(response), (method, url, response.content[:200])
