"""The read-response cache over real HTTP: hits, exact invalidation, visibility, expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from packyard.api.app import create_app
from packyard.api.cache import CachedResponse, CacheKey, ReadCache, ResponseCache
from packyard.domain.enums import Role
from packyard.domain.rules import utcnow
from packyard.services.container import Services
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant, unique
from tests.support.revocation import get_version, revoke
from tests.support.server import serving_app
from tests.support.store_state import set_revocation

HIT = "x-packyard-cache"


@pytest.fixture
def cache_server(services: Services) -> Iterator[tuple[str, ReadCache]]:
    """A server without background jobs, so only requests and the clock change responses."""
    app = create_app(services, background_jobs=False)
    with serving_app(app) as url:
        yield url, app.state.read_cache


@pytest.fixture
def capi(cache_server: tuple[str, ReadCache], tenant: TenantFixture) -> Iterator[Api]:
    client = Api(cache_server[0], tenant)
    yield client
    client.close()


def until_hit(api: Api, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    """Ask until the answer comes from the cache: the first and the last answer.

    The cache stores a response the second time it is asked for at one generation,
    so the third identical request is the first hit.
    """
    first = api.get(path, **kw)
    api.get(path, **kw)
    return first, api.get(path, **kw)


def test_a_repeated_read_is_a_hit_with_identical_bytes(capi: Api) -> None:
    b = unique("b")
    capi.create_bucket(b)
    capi.complete_version(b, "fp-1", regions=("us-east-1", "eu-west-1"))
    for path in (
        "/buckets",
        f"/buckets/{b}",
        f"/buckets/{b}/versions",
        f"/buckets/{b}/versions/fp-1",
        f"/buckets/{b}/versions/fp-1/builds",
        f"/buckets/{b}/channels",
        f"/buckets/{b}/channels/latest",
        f"/buckets/{b}/channels/latest/history",
        f"/buckets/{b}/ancestry",
        "/registry",
    ):
        first, second = until_hit(capi, path)
        assert first.status_code == second.status_code == 200, path
        assert second.headers[HIT] == "hit", path
        assert first.content == second.content, path
        assert second.headers["content-type"] == "application/json"
        assert second.headers["x-content-type-options"] == "nosniff"


def test_every_kind_of_write_is_seen_by_the_next_read(capi: Api) -> None:
    b = unique("b")
    capi.create_bucket(b)
    v1 = capi.complete_version(b, "fp-1")
    channel = f"/buckets/{b}/channels/latest"
    bucket = f"/buckets/{b}"
    until_hit(capi, channel)
    until_hit(capi, bucket)

    capi.ok(capi.patch(bucket, {"description": "changed", "update_mask": "description"}))
    assert capi.ok(capi.get(bucket))["bucket"]["description"] == "changed"

    v2 = capi.complete_version(b, "fp-2")
    assert capi.ok(capi.get(channel))["channel"]["version"]["id"] == v2["id"]

    revoke(capi, b, "fp-2", revoke_at="2020-01-01T00:00:00Z", revocation_message="CVE")
    assert capi.ok(capi.get(channel))["channel"]["version"]["id"] == v1["id"]
    assert get_version(capi, b, "fp-2")["status"] == "VERSION_REVOKED"

    capi.ok(capi.delete(bucket))
    assert_status(capi.get(channel), 404, 5)
    assert_status(capi.get(bucket), 404, 5)


def test_a_write_in_another_project_keeps_the_hit(
    capi: Api, services: Services, cache_server: tuple[str, ReadCache]
) -> None:
    other = Api(cache_server[0], make_tenant(services))  # tenancy writes count for everyone
    b = unique("b")
    capi.create_bucket(b)
    until_hit(capi, f"/buckets/{b}")
    try:
        other.create_bucket(unique("elsewhere"))
    finally:
        other.close()
    assert capi.get(f"/buckets/{b}").headers[HIT] == "hit"


def test_writes_outside_the_api_invalidate_everything(capi: Api, services: Services) -> None:
    """A write through the store that names no project (tests, jobs) counts for every project."""
    b = unique("b")
    capi.create_bucket(b)
    v = capi.complete_version(b, "fp-1")
    until_hit(capi, f"/buckets/{b}/versions/fp-1")
    set_revocation(services.store, v["id"])
    got = capi.get(f"/buckets/{b}/versions/fp-1")
    assert HIT not in got.headers
    assert got.json()["version"]["status"] == "VERSION_REVOKED"


def test_a_viewer_never_gets_what_a_contributor_may_see(capi: Api) -> None:
    b = unique("b")
    capi.create_bucket(b)
    v = capi.complete_version(b, "fp-1")
    restricted = f"/buckets/{b}/channels/secret"
    capi.ok(capi.post(f"/buckets/{b}/channels", {"name": "secret", "restricted": True}))
    capi.ok(
        capi.patch(
            restricted,
            {"version_fingerprint": v["fingerprint"], "update_mask": "versionFingerprint"},
        )
    )
    listing = f"/buckets/{b}/channels"
    for path in (restricted, listing):
        assert until_hit(capi, path)[1].headers[HIT] == "hit"
    viewer = capi.as_role(Role.VIEWER)
    try:
        for _ in range(3):
            assert_status(viewer.get(restricted), 403, 7)
            names = [c["name"] for c in viewer.ok(viewer.get(listing))["channels"]]
            assert "secret" not in names
    finally:
        viewer.close()


def test_a_hit_still_requires_a_valid_token_and_a_role(capi: Api, services: Services) -> None:
    b = unique("b")
    capi.create_bucket(b)
    path = capi.prefix + f"/buckets/{b}"
    assert until_hit(capi, f"/buckets/{b}")[1].headers[HIT] == "hit"
    token = capi.headers()["Authorization"].removeprefix("Bearer ")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert_status(capi.http.get(path), 401, 16)
    assert_status(capi.http.get(path, headers={"Authorization": f"Bearer {forged}"}), 401, 16)
    stranger = make_tenant(services)  # a principal with no role in this project
    outsider = {"Authorization": f"Bearer {stranger.identities[Role.ADMIN].token}"}
    assert_status(capi.http.get(path, headers=outsider), 404, 5)


def test_search_is_keyed_on_its_body(capi: Api) -> None:
    b = unique("b")
    capi.create_bucket(b)
    ids = []
    for fp in ("fp-1", "fp-2"):
        v = capi.complete_version(b, fp)
        ids.append(v["builds"][0]["artifacts"][0]["external_identifier"])
    for external_id, fp in zip(ids, ("fp-1", "fp-2"), strict=True):
        for _ in range(3):
            body = {"external_identifier": external_id}
            found = capi.ok(capi.post("/_search/external_artifact", body))["artifacts"]
            assert [a["version"]["fingerprint"] for a in found] == [fp]


@pytest.mark.slow
@pytest.mark.parametrize("rollback", [True, False], ids=["rollback", "no-rollback"])
def test_a_scheduled_revocation_takes_effect_on_time_without_any_write(
    capi: Api, rollback: bool
) -> None:
    b = unique("b")
    capi.create_bucket(b)
    capi.complete_version(b, "fp-1")
    at = utcnow() + timedelta(seconds=1.5)
    revoke(
        capi,
        b,
        "fp-1",
        revoke_at=at.isoformat(),
        revocation_message="rotate keys",
        disable_rollback_channels=not rollback,
    )
    _, second = until_hit(capi, f"/buckets/{b}/versions/fp-1")
    assert second.headers[HIT] == "hit"
    assert second.json()["version"]["status"] == "VERSION_REVOCATION_SCHEDULED"
    time.sleep(max(0.0, (at - utcnow()).total_seconds()) + 0.05)
    after = capi.get(f"/buckets/{b}/versions/fp-1")
    assert HIT not in after.headers
    assert after.json()["version"]["status"] == "VERSION_REVOKED"


def test_errors_are_not_cached(capi: Api) -> None:
    b = unique("b")
    assert_status(capi.get(f"/buckets/{b}"), 404, 5)
    capi.create_bucket(b)
    assert capi.ok(capi.get(f"/buckets/{b}"))["bucket"]["name"] == b


def test_the_cache_can_be_turned_off(services: Services, tenant: TenantFixture) -> None:
    app = create_app(services, background_jobs=False, response_cache_mb=0)
    assert not hasattr(app.state, "read_cache")
    with serving_app(app) as url:
        client = Api(url, tenant)
        try:
            b = unique("b")
            client.create_bucket(b)
            assert all(HIT not in r.headers for r in until_hit(client, f"/buckets/{b}"))
        finally:
            client.close()


def test_what_is_read_once_between_writes_is_not_stored(
    capi: Api, cache_server: tuple[str, ReadCache]
) -> None:
    """Packer reads its version once between writes: storing that would be wasted work."""
    cache = cache_server[1].responses
    b = unique("b")
    capi.create_bucket(b)
    stored = len(cache)
    for n in range(3):
        assert capi.ok(capi.get(f"/buckets/{b}"))["bucket"]["description"] == (
            f"d{n - 1}" if n else ""
        )
        body = {"description": f"d{n}", "update_mask": "description"}
        capi.ok(capi.patch(f"/buckets/{b}", body))
    assert len(cache) == stored
    until_hit(capi, f"/buckets/{b}")
    assert len(cache) == stored + 1


# --- the LRU itself -------------------------------------------------------------------------


def entry(generation: int, size: int, expires: float = float("inf")) -> CachedResponse:
    return CachedResponse(generation, expires, {"type": "http.response.start"}, b"", size)


def key(n: int) -> CacheKey:
    return (f"/p/{n}".encode(), b"", b"", (None, False))


def test_the_lru_is_bounded_by_bytes_and_keeps_what_is_used() -> None:
    cache = ResponseCache(max_bytes=1000)
    for n in range(4):
        cache.put(key(n), entry(1, 240))
    assert cache.get(key(0), 1, 0.0) is not None  # used: now the most recent
    cache.put(key(4), entry(1, 240))
    assert cache.get(key(1), 1, 0.0) is None  # the least recently used went
    assert all(cache.get(key(n), 1, 0.0) is not None for n in (0, 2, 3, 4))
    assert cache.bytes == 960 and len(cache) == 4


def test_an_entry_is_served_only_at_its_generation_and_before_it_expires() -> None:
    cache = ResponseCache(max_bytes=10_000)
    cache.put(key(1), entry(7, 100, expires=50.0))
    assert cache.get(key(1), 7, 49.9) is not None
    assert cache.get(key(1), 8, 49.9) is None
    assert cache.get(key(1), 7, 50.0) is None


def test_one_huge_response_does_not_flush_the_rest() -> None:
    cache = ResponseCache(max_bytes=1000)
    cache.put(key(1), entry(1, 200))
    cache.put(key(2), entry(1, 900))
    assert cache.get(key(2), 1, 0.0) is None
    assert cache.get(key(1), 1, 0.0) is not None


def test_replacing_an_entry_keeps_the_byte_count_right() -> None:
    cache = ResponseCache(max_bytes=1000)
    cache.put(key(1), entry(1, 200))
    cache.put(key(1), entry(2, 100))
    assert cache.bytes == 100 and len(cache) == 1
