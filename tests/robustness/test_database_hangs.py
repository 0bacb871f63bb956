"""A database that stops answering (a hung host, a dropped route) while the server runs:
the event loop never waits for it, so ``/healthz`` and every request that needs no database
keep being answered, requests are refused as unavailable once the signing keys have gone
unread for too long, and everything works again once the database answers."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from sqlalchemy import make_url

from packyard.domain.enums import Role
from packyard.services import keys
from packyard.services.auth import TOKEN_AUDIENCE
from packyard.services.container import Services
from packyard.store.engine import Store
from tests.support import dropped_route
from tests.support.factories import TenantFixture, make_tenant
from tests.support.postgres import unix_socket
from tests.support.server import running_server
from tests.support.tcp_proxy import FreezableProxy, freezable_proxy
from tests.support.wire import ok

STALE_LIMIT_S = 3.0  # the keys' limit, shortened so the test takes seconds
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def proxy(db_url: str) -> Iterator[FreezableProxy]:
    with freezable_proxy(unix_socket(db_url)) as proxy:
        yield proxy


@pytest.fixture
def proxied(db_url: str, proxy: FreezableProxy) -> Iterator[Services]:
    database = make_url(db_url).database
    store = Store(f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{database}")
    yield Services.create(store)
    store.dispose()


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_database_that_stops_answering_never_holds_the_event_loop(
    proxied: Services, proxy: FreezableProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keys, "STALE_LIMIT_S", STALE_LIMIT_S)
    tenant: TenantFixture = make_tenant(proxied)
    token = tenant.identities[Role.ADMIN].token
    prefix = (
        f"/packer/2023-01-01/organizations/{tenant.organization_id}/projects/{tenant.project_id}"
    )
    headers = {"Authorization": f"Bearer {token}"}
    claims = {"sub": "p", "aud": TOKEN_AUDIENCE, "exp": 4_000_000_000}
    forged = jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": "unknown"})
    unknown_key = {"Authorization": f"Bearer {forged}"}
    with (
        running_server(proxied) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as client,
    ):
        ok(client.get(prefix + "/buckets", headers=headers), "PackerService_ListBuckets")
        proxy.frozen.set()
        frozen_at = time.monotonic()
        # a key this server has not read: verified where a read may wait, not on the loop
        time.sleep(keys.UNKNOWN_KEY_REFRESH_S)  # a read for it is due
        with contextlib.suppress(httpx.ReadTimeout):
            client.get(prefix + "/buckets", headers=unknown_key, timeout=1)
        refused_at: float | None = None
        while time.monotonic() - frozen_at < STALE_LIMIT_S + keys.REFRESH_S:
            started = time.monotonic()
            health = client.get("/healthz", timeout=1)
            assert health.status_code == 200
            try:
                listed = client.get(prefix + "/buckets", headers=headers, timeout=1)
            except httpx.ReadTimeout:
                continue  # waiting for the database on a worker thread: allowed, for now
            assert listed.status_code == 503, listed.text
            assert listed.json()["code"] == 14
            assert time.monotonic() - started < 1
            refused_at = refused_at or time.monotonic()
        assert refused_at is not None, "never refused while the database hung"
        assert refused_at - frozen_at < STALE_LIMIT_S + keys.BACKGROUND_REFRESH_S + 2
        proxy.frozen.clear()
        deadline = time.monotonic() + 30
        while client.get(prefix + "/buckets", headers=headers).status_code != 200:
            assert time.monotonic() < deadline, "still refused after the database came back"
            time.sleep(0.1)


def _can_make_network_namespaces() -> bool:
    try:
        made = subprocess.run(
            ["unshare", "-n", "true"], check=False, capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return made.returncode == 0


@pytest.mark.parametrize("backend", ["postgresql"])
def test_connections_waiting_on_a_dropped_route_fail_in_bounded_time(db_url: str) -> None:
    """Unlike a hung server, a dropped route answers nothing at all, not even TCP's
    acknowledgements: a read in flight and the cache's idle probe fail within the
    connections' liveness bound instead of the kernel's 15 minutes, and both work again
    once the route is back (the pool opens new connections)."""
    if not _can_make_network_namespaces():
        pytest.skip("dropping a route needs a network namespace of its own (root, unshare)")
    ran = subprocess.run(
        [
            "unshare",
            "-n",
            sys.executable,
            "-m",
            "tests.support.dropped_route",
            unix_socket(db_url),
            str(make_url(db_url).database),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stderr
    seen = json.loads(ran.stdout)
    bound = dropped_route.DEAD_PEER_S + 1.5
    generation = seen["before"][1]
    assert seen["before"] == [1, generation] and generation is not None
    assert seen["read_error"] == "OperationalError"
    assert seen["read_waited_s"] < bound
    assert seen["probe"] is None
    assert seen["probe_waited_s"] < bound
    assert seen["after"] == [1, generation]
