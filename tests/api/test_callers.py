"""The caller of an API request: the role from the role cache, else from one lookup shared
by the requests that need it meanwhile. The lookup is held at a gate in front of the
database, so which requests wait for it is decided, not raced."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from packyard import requestcontext
from packyard.api import callers as callers_module
from packyard.api.callers import Callers
from packyard.api.calls import READ_THREAD_NAME, run_read
from packyard.domain.enums import Role
from packyard.domain.models import Caller
from packyard.errors import ApiError, Code
from packyard.services.auth import ROLE_CACHE_TTL_S, RoleCache
from packyard.services.container import Services
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant
from tests.support.wire import ok

REQUESTS = 8


@dataclass
class HeldLookups:
    """In front of the database: counts the role lookups and holds them until released."""

    made: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, svc: Services, fn: Callable[..., Caller], *args: Any) -> Caller:
        self.made += 1
        await self.released.wait()
        return await run_read(svc, fn, *args)


@pytest.fixture
def held(services: Services, monkeypatch: pytest.MonkeyPatch) -> HeldLookups:
    services.auth.roles = RoleCache(ROLE_CACHE_TTL_S, 10_000)  # every role has left it
    lookups = HeldLookups()
    monkeypatch.setattr(callers_module, "run_read", lookups)
    return lookups


def _asked(callers: Callers, token: str, tenant: TenantFixture) -> list[asyncio.Task[Caller]]:
    """``REQUESTS`` callers asked for at once, as that many requests of one token would."""
    return [
        asyncio.ensure_future(callers.caller({}, token, tenant.organization_id, tenant.project_id))
        for _ in range(REQUESTS)
    ]


async def _settled() -> None:
    """Every task started has reached its first wait."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_requests_needing_a_role_that_left_the_cache_share_one_lookup(
    services: Services, tenant: TenantFixture, held: HeldLookups
) -> None:
    callers = Callers(services)
    token = tenant.identities[Role.ADMIN].token

    async def main() -> None:
        tasks = _asked(callers, token, tenant)
        await _settled()
        assert (held.made, len(callers)) == (1, 1)
        held.released.set()
        found = await asyncio.gather(*tasks)
        assert len({(c.principal_id, c.role, c.project_id) for c in found}) == 1
        assert found[0].project_id == tenant.project_id
        assert len(callers) == 0
        # The lookup filled the role cache: the next request needs none.
        await callers.caller({}, token, tenant.organization_id, tenant.project_id)
        assert held.made == 1

    asyncio.run(main())


def test_a_refused_token_is_refused_for_every_request_that_waited(
    services: Services, tenant: TenantFixture, held: HeldLookups
) -> None:
    callers = Callers(services)
    stranger = make_tenant(services)  # its principals hold no role on ``tenant``'s project
    token = stranger.identities[Role.ADMIN].token

    async def main() -> None:
        tasks = _asked(callers, token, tenant)
        await _settled()
        held.released.set()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        assert {type(o) for o in outcomes} == {ApiError}
        assert {o.code for o in outcomes if isinstance(o, ApiError)} == {Code.NOT_FOUND}
        assert (held.made, len(callers)) == (1, 0)

    asyncio.run(main())


def test_a_request_that_goes_away_leaves_the_lookup_to_the_others(
    services: Services, tenant: TenantFixture, held: HeldLookups
) -> None:
    callers = Callers(services)
    token = tenant.identities[Role.ADMIN].token

    async def main() -> None:
        first, *others = _asked(callers, token, tenant)
        await _settled()
        first.cancel()
        await _settled()
        held.released.set()
        found = await asyncio.gather(*others)
        assert all(c.project_id == tenant.project_id for c in found)
        assert first.cancelled()
        assert held.made == 1

    asyncio.run(main())


def test_the_role_is_read_as_a_read_in_a_request_that_may_change_something(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A push's calls never queue their role lookup behind other writes."""
    callers = Callers(services)
    token = tenant.identities[Role.ADMIN].token
    services.auth.roles = RoleCache(ROLE_CACHE_TTL_S, 10_000)
    threads: list[str] = []
    authorize = services.auth.authorize

    def recorded(*args: Any) -> Caller:
        threads.append(threading.current_thread().name)
        return authorize(*args)

    monkeypatch.setattr(services.auth, "authorize", recorded)

    async def main() -> None:
        requestcontext.enter(requestcontext.RequestContext("req", "127.0.0.1"))
        await callers.caller({}, token, tenant.organization_id, tenant.project_id)
        loop_thread = threading.current_thread().name
        expected = loop_thread if services.store.is_sqlite else READ_THREAD_NAME
        assert [name.partition("_")[0] for name in threads] == [expected]

    asyncio.run(main())


def test_the_read_cache_and_the_route_share_one_answer_per_request(
    services: Services, tenant: TenantFixture, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The read cache resolves the caller first; when it cannot answer (a miss, or a
    refusal it leaves to the route to render) the route reuses that answer."""
    api.create_bucket("b")
    stranger = make_tenant(services).identities[Role.ADMIN].token  # no role on the project
    lookups: list[str] = []
    authorize = services.auth.authorize

    def counted(token: str, *args: Any) -> Caller:
        lookups.append(token)
        return authorize(token, *args)

    monkeypatch.setattr(services.auth, "authorize", counted)
    services.auth.roles = RoleCache(ROLE_CACHE_TTL_S, 10_000)  # every role has left it
    for path in ("/buckets", "/buckets/b"):
        response = api.http.get(api.prefix + path, headers={"Authorization": f"Bearer {stranger}"})
        assert_status(response, 404, 5)
    ok(api.get("/buckets/b"), "PackerService_GetBucket")  # a miss: answered by the route
    assert lookups == [stranger, stranger, api.identity.token]
