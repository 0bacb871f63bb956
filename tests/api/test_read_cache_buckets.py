"""Per-bucket cache invalidation: pushes into one bucket keep the others' responses cached,
and every response that shows another bucket (ancestry) is invalidated when that bucket
changes.

Every check compares the cached server's answer with the answer of a server without a
cache on the same database: after each write, the first answer of the cached server to
every read must be byte for byte what the uncached server computes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from packyard.api.app import create_app
from packyard.services.container import Services
from tests.support.factories import Api, TenantFixture, unique
from tests.support.revocation import revoke
from tests.support.server import serving_app

HIT = "x-packyard-cache"


@pytest.fixture
def servers(services: Services, tenant: TenantFixture) -> Iterator[tuple[Api, Api]]:
    """(cached, uncached): two servers without background jobs on one database."""
    cached_app = create_app(services, background_jobs=False)
    plain_app = create_app(services, background_jobs=False, response_cache_mb=0)
    with serving_app(cached_app) as cached_url, serving_app(plain_app) as plain_url:
        cached, plain = Api(cached_url, tenant), Api(plain_url, tenant)
        try:
            yield cached, plain
        finally:
            cached.close()
            plain.close()


class Registry:
    """Three buckets: ``app`` is built from ``base``'s `release` channel; ``other`` is
    unrelated."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.base, self.app, self.other = unique("base"), unique("app"), unique("other")
        for name in (self.base, self.app, self.other):
            api.create_bucket(name)
        self.base1 = api.complete_version(self.base, "base-1")
        api.complete_version(self.base, "base-2")
        self.release = api.ok(
            api.post(
                f"/buckets/{self.base}/channels",
                {"name": "release", "version_fingerprint": "base-1"},
            )
        )["channel"]
        api.complete_version(self.app, "app-1", parent=(self.base1["id"], self.release["id"]))
        api.complete_version(self.other, "other-1")

    def bucket_paths(self, bucket: str, fingerprints: tuple[str, ...]) -> list[str]:
        paths = [
            f"/buckets/{bucket}",
            f"/buckets/{bucket}/versions",
            f"/buckets/{bucket}/channels",
            f"/buckets/{bucket}/channels/latest",
            f"/buckets/{bucket}/ancestry",
            f"/buckets/{bucket}/ancestry?type=ANCESTRY_TYPE_CHILDREN",
        ]
        paths += [f"/buckets/{bucket}/versions/{fp}" for fp in fingerprints]
        return paths

    def related_paths(self) -> list[str]:
        return [
            *self.bucket_paths(self.base, ("base-1", "base-2")),
            f"/buckets/{self.base}/channels/release",
            *self.bucket_paths(self.app, ("app-1",)),
        ]

    def all_paths(self) -> list[str]:
        return [
            *self.related_paths(),
            *self.bucket_paths(self.other, ("other-1",)),
            "/buckets",
            "/registry",
        ]


def warm(api: Api, paths: list[str]) -> None:
    """Ask every path until it is stored (the third ask of an unchanged read is a hit)."""
    for path in paths:
        for _ in range(3):
            api.ok(api.get(path))
        assert api.get(path).headers.get(HIT) == "hit", path


def assert_exact(cached: Api, plain: Api, paths: list[str]) -> dict[str, bool]:
    """The cached server's next answer to each path equals a fresh computation; returns
    which answers came from the cache."""
    hits = {}
    for path in paths:
        got = cached.get(path)
        want = plain.get(path)
        assert got.status_code == want.status_code, path
        assert got.json() == want.json(), path
        hits[path] = got.headers.get(HIT) == "hit"
    return hits


def assign(api: Api, bucket: str, channel: str, fingerprint: str) -> None:
    body = {"version_fingerprint": fingerprint, "update_mask": "versionFingerprint"}
    api.ok(api.patch(f"/buckets/{bucket}/channels/{channel}", body))


def parents_status(api: Api, bucket: str, fingerprint: str) -> Any:
    return api.ok(api.get(f"/buckets/{bucket}/versions/{fingerprint}"))["version"]["parents"][
        "status"
    ]


def test_a_push_into_another_bucket_keeps_the_hits(servers: tuple[Api, Api]) -> None:
    cached, plain = servers
    reg = Registry(cached)
    warm(cached, reg.all_paths())

    cached.complete_version(reg.other, "other-2")  # create, builds, complete: a whole push

    hits = assert_exact(cached, plain, reg.all_paths())
    assert all(hits[p] for p in reg.related_paths()), [
        p for p in reg.related_paths() if not hits[p]
    ]
    # What shows every bucket, and what shows the pushed bucket, is computed again.
    assert not hits["/buckets"] and not hits["/registry"]
    assert not hits[f"/buckets/{reg.other}"]
    assert not hits[f"/buckets/{reg.other}/versions"]


def test_moving_a_parent_channel_invalidates_the_children(servers: tuple[Api, Api]) -> None:
    cached, plain = servers
    reg = Registry(cached)
    warm(cached, reg.all_paths())
    assert parents_status(cached, reg.app, "app-1") == "UP_TO_DATE"

    assign(cached, reg.base, "release", "base-2")

    hits = assert_exact(cached, plain, reg.all_paths())
    assert parents_status(cached, reg.app, "app-1") == "OUT_OF_DATE"
    assert not hits[f"/buckets/{reg.app}/versions/app-1"]
    assert not hits[f"/buckets/{reg.app}"]
    other = reg.bucket_paths(reg.other, ("other-1",))
    assert all(hits[p] for p in other), [p for p in other if not hits[p]]


def test_a_push_into_the_parent_invalidates_the_children_when_it_completes(
    servers: tuple[Api, Api],
) -> None:
    """Neighbours see a bucket's channels and version numbers: creating a version and its
    builds changes neither; completing it (a number, `latest` moved) changes both."""
    cached, plain = servers
    reg = Registry(cached)
    latest = cached.ok(cached.get(f"/buckets/{reg.base}/channels/latest"))["channel"]
    base2 = latest["version"]
    cached.complete_version(reg.app, "app-2", parent=(base2["id"], latest["id"]))
    app = reg.bucket_paths(reg.app, ("app-1", "app-2"))
    paths = [*reg.all_paths(), *app]
    warm(cached, paths)
    assert parents_status(cached, reg.app, "app-2") == "UP_TO_DATE"
    cached.create_version(reg.base, "base-3")
    build = cached.create_build(reg.base, "base-3", "null.a")

    hits = assert_exact(cached, plain, paths)
    assert all(hits[p] for p in app), [p for p in app if not hits[p]]
    assert not hits[f"/buckets/{reg.base}/versions"]

    warm(cached, paths)
    cached.finish_build(reg.base, "base-3", build["id"])
    hits = assert_exact(cached, plain, paths)
    assert parents_status(cached, reg.app, "app-2") == "OUT_OF_DATE"  # `latest` moved on
    assert not hits[f"/buckets/{reg.app}/versions/app-2"]


def test_a_new_child_invalidates_the_parent(servers: tuple[Api, Api]) -> None:
    """has_descendants and the children relations of the parent bucket change with an
    edge recorded by a write into the child bucket."""
    cached, plain = servers
    reg = Registry(cached)
    warm(cached, reg.all_paths())
    base2 = cached.ok(cached.get(f"/buckets/{reg.base}/versions/base-2"))["version"]
    assert base2["has_descendants"] is False

    cached.complete_version(reg.app, "app-2", parent=(base2["id"], None))

    hits = assert_exact(cached, plain, reg.all_paths())
    base2 = cached.ok(cached.get(f"/buckets/{reg.base}/versions/base-2"))["version"]
    assert base2["has_descendants"] is True
    assert not hits[f"/buckets/{reg.base}/versions/base-2"]
    assert not hits[f"/buckets/{reg.base}/ancestry?type=ANCESTRY_TYPE_CHILDREN"]


def test_a_new_edge_from_an_unrelated_bucket_invalidates_the_parent(
    servers: tuple[Api, Api],
) -> None:
    """The parent learns of a child bucket it had no edge to when its response was stored."""
    cached, plain = servers
    reg = Registry(cached)
    paths = [*reg.all_paths(), f"/buckets/{reg.other}/versions/other-2"]
    warm(cached, reg.all_paths())
    cached.complete_version(reg.other, "other-2", parent=(reg.base1["id"], reg.release["id"]))
    assert_exact(cached, plain, paths)
    warm(cached, paths)
    # ``other`` is now a child of ``base``: moving `release` changes its status too.
    assign(cached, reg.base, "release", "base-2")
    hits = assert_exact(cached, plain, paths)
    assert parents_status(cached, reg.other, "other-2") == "OUT_OF_DATE"
    assert not hits[f"/buckets/{reg.other}/versions/other-2"]


def test_revoking_a_parent_invalidates_the_descendants(servers: tuple[Api, Api]) -> None:
    cached, plain = servers
    reg = Registry(cached)
    warm(cached, reg.all_paths())

    revoke(cached, reg.base, "base-1", revoke_at="2020-01-01T00:00:00Z", revocation_message="CVE")

    assert_exact(cached, plain, reg.all_paths())
    app1 = cached.ok(cached.get(f"/buckets/{reg.app}/versions/app-1"))["version"]
    assert app1["status"] == "VERSION_REVOKED"
    assert app1["revocation_inherited_from"]["bucket_name"] == reg.base


def test_every_later_write_stays_exact(servers: tuple[Api, Api]) -> None:
    """A run of writes of every kind over related buckets, each followed by a full check."""
    cached, plain = servers
    reg = Registry(cached)
    paths = reg.all_paths()
    base = f"/buckets/{reg.base}"
    steps = [
        lambda: cached.ok(
            cached.patch(base, {"description": "changed", "update_mask": "description"})
        ),
        lambda: cached.ok(
            cached.patch(
                f"{base}/channels/release", {"restricted": True, "update_mask": "restricted"}
            )
        ),
        lambda: assign(cached, reg.base, "release", "base-2"),
        lambda: cached.ok(cached.delete(f"{base}/channels/release")),
        lambda: cached.complete_version(reg.base, "base-3"),
        lambda: cached.ok(cached.delete(f"/buckets/{reg.app}/versions/app-1")),
    ]
    for step in steps:
        warm_present(cached, paths)
        step()
        assert_exact(cached, plain, paths)


def warm_present(api: Api, paths: list[str]) -> None:
    """Store every path that answers 200 (errors are never stored)."""
    for path in paths:
        for _ in range(3):
            if api.get(path).status_code != 200:
                break
