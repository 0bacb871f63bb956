"""Identical reads arriving while one is being answered share that answer, exactly as a hit.

After a write, the readers of a popular channel all miss at once. The first to store the
response computes it; the others wait for it, provided they read the same generation of
the same keys (nothing they must see changed since). The leader is held at a gate in
front of the normal path, so which requests compute is decided, not raced.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from packyard.api.app import PackyardApp, create_app
from packyard.api.cache import CachedReadMiddleware, ReadCache, ResponseCache
from packyard.services.auth import ROLE_CACHE_TTL_S, RoleCache
from packyard.services.container import Services
from tests.support.factories import Api, TenantFixture, unique
from tests.support.server import serving_app

READERS = 8


@dataclass
class Gate:
    """In front of the normal path: counts what it computes and holds the next ``held``
    computations until released (then answers them with ``status`` when it is not 200)."""

    app: ASGIApp
    held: int = 0
    status: int = 200
    computed: int = 0
    waiting: int = 0
    released: threading.Event = field(default_factory=threading.Event)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.computed += 1
        if self.held:
            self.held -= 1
            self.waiting += 1
            await asyncio.to_thread(self.released.wait, 30)
            self.waiting -= 1
            if self.status != 200:
                await send({"type": "http.response.start", "status": self.status, "headers": []})
                await send({"type": "http.response.body", "body": b"{}"})
                return
        await self.app(scope, receive, send)


@dataclass
class Served:
    api: Api
    gate: Gate
    cache: ReadCache

    @property
    def responses(self) -> ResponseCache:
        return self.cache.responses


@pytest.fixture
def served(services: Services, tenant: TenantFixture) -> Iterator[Served]:
    app = create_app(services, background_jobs=False)
    assert isinstance(app, PackyardApp)
    cache_layer = _layer(app.front, CachedReadMiddleware)
    gate = Gate(cache_layer.app)
    cache_layer.app = gate
    with serving_app(app) as url:
        api = Api(url, tenant)
        yield Served(api, gate, app.state.read_cache)
        gate.released.set()
        api.close()


def _layer(app: object, kind: type[CachedReadMiddleware]) -> CachedReadMiddleware:
    """The ``kind`` middleware in the chain of ``app`` attributes from ``app``."""
    while not isinstance(app, kind):
        app = app.app  # type: ignore[attr-defined]
    return app


def _channel(served: Served) -> tuple[str, str]:
    """A bucket with a complete version, and its ``latest`` channel's path, asked once (the
    next ask at this generation stores the answer)."""
    bucket = unique("b")
    served.api.create_bucket(bucket)
    served.api.complete_version(bucket)
    path = f"/buckets/{bucket}/channels/latest"
    served.api.ok(served.api.get(path))
    return bucket, path


def _together(served: Served, path: str) -> Callable[[], list[httpx.Response]]:
    """``READERS`` identical reads sent at once, the first one held at the gate; returns a
    function collecting their answers once the gate opens."""
    served.gate.held = 1
    served.gate.released.clear()
    probed = served.cache.probes
    pool = ThreadPoolExecutor(READERS)
    futures = [pool.submit(served.api.get, path) for _ in range(READERS)]
    _wait_for(lambda: served.gate.waiting == 1 and served.cache.probes - probed == READERS)
    time.sleep(0.1)  # the last reader's probe answers, then it joins the flight at once

    def answers() -> list[httpx.Response]:
        served.gate.released.set()
        try:
            return [future.result(timeout=30) for future in futures]
        finally:
            pool.shutdown()

    return answers


def _wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "the readers never reached the gate and the probe"
        time.sleep(0.01)


def test_identical_reads_in_flight_share_one_computation(served: Served) -> None:
    _, path = _channel(served)
    computed, shared = served.gate.computed, served.responses.shared
    responses = _together(served, path)()
    assert [r.status_code for r in responses] == [200] * READERS
    assert len({r.content for r in responses}) == 1
    assert served.gate.computed - computed == 1
    assert served.responses.shared - shared == READERS - 1
    # The shared answer was stored as well: the next read is a plain hit.
    assert served.api.get(path).headers["x-packyard-cache"] == "hit"
    assert served.gate.computed - computed == 1


def test_a_read_sent_after_a_write_returned_never_shares_an_older_answer(
    served: Served,
) -> None:
    bucket, path = _channel(served)
    answers = _together(served, path)
    newer = served.api.complete_version(bucket)  # moves latest while the leader is held
    shared = served.responses.shared
    after = served.api.ok(served.api.get(path))
    assert after["channel"]["managed"] and after["channel"]["version"]["id"] == newer["id"]
    assert served.responses.shared == shared  # computed afresh, not joined
    assert {r.status_code for r in answers()} == {200}


def test_readers_compute_their_own_answer_when_the_shared_one_failed(served: Served) -> None:
    _, path = _channel(served)
    served.gate.status = 503
    computed = served.gate.computed
    statuses = sorted(r.status_code for r in _together(served, path)())
    assert statuses == [200] * (READERS - 1) + [503]
    assert served.gate.computed - computed == READERS  # the held one, then each waiter


def test_readers_whose_role_left_the_role_cache_are_answered_from_the_cache(
    served: Served, services: Services
) -> None:
    """Their role is looked up for them (:mod:`packyard.api.callers`), not by each of them on
    the normal, uncached path."""
    _, path = _channel(served)
    served.api.ok(served.api.get(path))  # asked twice at one generation: stored
    services.auth.roles = RoleCache(ROLE_CACHE_TTL_S, 10_000)
    computed = served.gate.computed
    with ThreadPoolExecutor(READERS) as pool:
        responses = list(pool.map(lambda _: served.api.get(path), range(READERS)))
    assert [r.headers.get("x-packyard-cache") for r in responses] == ["hit"] * READERS
    assert served.gate.computed == computed
