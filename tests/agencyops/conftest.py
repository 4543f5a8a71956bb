from __future__ import annotations

import pytest

from tests.conftest import World


@pytest.fixture
def w(world: World) -> World:
    """The world plus objects of client_b, which nobody but admins may see."""
    from agencyops.tenancy import Actor
    from clients import services
    from tests.factories import EngagementFactory

    world.engagement_b = EngagementFactory(client=world.client_b)
    world.grant_b = services.grant_create(
        actor=Actor.system(world.org),
        grantee=world.member,
        client=world.client_b,
        permission="view",
        reason="client B view for member",
    )
    world.token, _ = services.api_token_issue(user=world.owner)
    return world
