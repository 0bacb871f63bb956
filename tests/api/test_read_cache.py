"""The read-response cache over real HTTP: hits, exact invalidation, visibility, expiry."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from packyard.api.app import create_app
from packyard.api.cache import ReadCache
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


def twice(api: Api, path: str, **kw: Any) -> tuple[httpx.Response, httpx.Response]:
    return api.get(path, **kw), api.get(path, **kw)


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
        first, second = twice(capi, path)
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
    twice(capi, channel)
    twice(capi, bucket)

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
    twice(capi, f"/buckets/{b}")
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
    twice(capi, f"/buckets/{b}/versions/fp-1")
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
        assert twice(capi, path)[1].headers[HIT] == "hit"
    viewer = capi.as_role(Role.VIEWER)
    try:
        for _ in range(2):
            assert_status(viewer.get(restricted), 403, 7)
            names = [c["name"] for c in viewer.ok(viewer.get(listing))["channels"]]
            assert "secret" not in names
    finally:
        viewer.close()


def test_a_hit_still_requires_a_valid_token_and_a_role(capi: Api, services: Services) -> None:
    b = unique("b")
    capi.create_bucket(b)
    path = capi.prefix + f"/buckets/{b}"
    assert twice(capi, f"/buckets/{b}")[1].headers[HIT] == "hit"
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
        for _ in range(2):
            body = {"external_identifier": external_id}
            found = capi.ok(capi.post("/_search/external_artifact", body))["artifacts"]
            assert [a["version"]["fingerprint"] for a in found] == [fp]


def test_a_scheduled_revocation_takes_effect_on_time_without_any_write(capi: Api) -> None:
    b = unique("b")
    capi.create_bucket(b)
    capi.complete_version(b, "fp-1")
    at = utcnow() + timedelta(seconds=1.5)
    revoke(capi, b, "fp-1", revoke_at=at.isoformat(), revocation_message="rotate keys")
    _, second = twice(capi, f"/buckets/{b}/versions/fp-1")
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
            assert all(HIT not in r.headers for r in twice(client, f"/buckets/{b}"))
        finally:
            client.close()
