"""The console's registry reads: BucketService.search_page (buckets filtered by name and
label in SQL, keyset pages, channel chips) and BucketService.overview (one bucket with its
channels, parents, children and the data source's version), on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from packyard.domain.enums import AncestryStatus, AncestryType, Role
from packyard.domain.models import Caller
from packyard.domain.overview import BucketQuery
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from tests.support.factories import TenantFixture
from tests.support.querycount import count_statements
from tests.support.revocation import push_version, request


def _names(services: Services, caller: Caller, query: BucketQuery, size: int = 100) -> list[str]:
    page = services.buckets.search_page(caller, query, PageRequest(size=size))
    return [s.bucket.name for s in page.items]


def _walk(services: Services, caller: Caller, query: BucketQuery, size: int) -> list[str]:
    names: list[str] = []
    token: str | None = None
    while True:
        page = services.buckets.search_page(caller, query, PageRequest(size=size, next_token=token))
        names += [s.bucket.name for s in page.items]
        if not page.next_token:
            return names
        token = page.next_token


@pytest.fixture
def admin(tenant: TenantFixture) -> Caller:
    return tenant.caller(Role.ADMIN)


@pytest.fixture
def viewer(tenant: TenantFixture) -> Caller:
    return tenant.caller(Role.VIEWER)


def test_search_by_name_is_a_case_insensitive_substring(services: Services, admin: Caller) -> None:
    for name in ("Web-Frontend", "web-backend", "db-main", "a_b", "axb"):
        services.buckets.create(admin, name, None, None)
    assert _names(services, admin, BucketQuery.parse("WEB", "", "")) == [
        "Web-Frontend",
        "web-backend",
    ]
    # LIKE's wildcards are plain characters in a search
    assert _names(services, admin, BucketQuery.parse("a_b", "", "")) == ["a_b"]
    assert _names(services, admin, BucketQuery.parse("%", "", "")) == []
    assert _names(services, admin, BucketQuery()) == sorted(
        ["Web-Frontend", "web-backend", "db-main", "a_b", "axb"]
    )


def test_search_by_label_key_or_key_and_value(services: Services, admin: Caller) -> None:
    services.buckets.create(admin, "one", None, {"team": "apps", "os": "ubuntu"})
    services.buckets.create(admin, "two", None, {"team": "platform"})
    services.buckets.create(admin, "three", None, {'we"ird.key': "x y", "os": "debian"})
    services.buckets.create(admin, "four", None, None)
    assert _names(services, admin, BucketQuery.parse("", "team=apps", "")) == ["one"]
    assert _names(services, admin, BucketQuery.parse("", "team", "")) == ["one", "two"]
    assert _names(services, admin, BucketQuery.parse("", " os = debian ", "")) == ["three"]
    assert _names(services, admin, BucketQuery.parse("", 'we"ird.key=x y', "")) == ["three"]
    assert _names(services, admin, BucketQuery.parse("", "team=", "")) == []
    assert _names(services, admin, BucketQuery.parse("t", "os", "")) == ["three"]


def test_bad_queries_name_their_field() -> None:
    with pytest.raises(ApiError) as bad_sort:
        BucketQuery.parse("", "", "size")
    assert bad_sort.value.code is Code.INVALID_ARGUMENT
    assert bad_sort.value.details[0]["field_violations"][0]["field"] == "sort"
    with pytest.raises(ApiError) as no_key:
        BucketQuery.parse("", "=value", "")
    assert no_key.value.details[0]["field_violations"][0]["field"] == "label"
    with pytest.raises(ApiError) as long_name:
        BucketQuery.parse("x" * 200, "", "")
    assert long_name.value.details[0]["field_violations"][0]["field"] == "q"
    with pytest.raises(ApiError):
        BucketQuery.parse("a\x00b", "", "")


def test_pages_walk_every_match_once_in_either_order(services: Services, admin: Caller) -> None:
    made = [f"svc-{i:02d}" for i in range(11)]
    for name in made:
        services.buckets.create(admin, name, None, None)
        time.sleep(0.002)  # distinct update times
    services.buckets.create(admin, "other", None, None)
    by_name = BucketQuery.parse("svc-", "", "name")
    assert _walk(services, admin, by_name, size=4) == made
    by_update = BucketQuery.parse("svc", "", "updated")
    assert _walk(services, admin, by_update, size=3) == list(reversed(made))
    # a token belongs to its filters
    first = services.buckets.search_page(admin, by_name, PageRequest(size=4))
    with pytest.raises(ApiError) as foreign:
        services.buckets.search_page(
            admin, BucketQuery.parse("svc-0", "", "name"), PageRequest(next_token=first.next_token)
        )
    assert foreign.value.code is Code.INVALID_ARGUMENT


def test_rows_carry_latest_status_and_user_channels(
    services: Services, admin: Caller, viewer: Caller
) -> None:
    services.buckets.create(admin, "base", None, None)
    v1 = push_version(services, admin, "base", "base-1")
    staging = services.channels.create(admin, "base", "staging", "base-1", False)
    services.channels.create(admin, "base", "canary", "base-1", True)
    services.buckets.create(admin, "app", None, {"team": "apps"})
    push_version(services, admin, "app", "app-1", parent_id=v1.id, parent_channel_id=staging.id)
    push_version(services, admin, "base", "base-2")
    services.channels.update(
        admin,
        "base",
        "staging",
        fingerprint="base-2",
        restricted=None,
        update_mask="versionFingerprint",
    )
    services.revocation.update(
        admin, "app", "app-1", request(revoke_at=utcnow() + timedelta(days=3), message="soon")
    )

    rows = {
        s.bucket.name: s
        for s in services.buckets.search_page(admin, BucketQuery(), PageRequest()).items
    }
    app = rows["app"]
    assert app.bucket.latest_version is not None
    assert app.bucket.latest_version.name == "v1"
    assert app.bucket.parents_status is AncestryStatus.OUT_OF_DATE
    assert app.bucket.latest_version.revoke_at is not None
    chips = [
        (c.name, c.version.name if c.version else None, c.restricted) for c in rows["base"].channels
    ]
    assert chips == [("canary", "v1", True), ("staging", "v2", False)]
    assert rows["app"].channels == []
    assert rows["base"].bucket.latest_version is not None

    seen = {
        s.bucket.name: s
        for s in services.buckets.search_page(viewer, BucketQuery(), PageRequest()).items
    }
    # `latest` is restricted by default: a viewer sees no latest version, no restricted chip
    assert seen["app"].bucket.latest_version is None
    assert seen["app"].latest_hidden and not app.latest_hidden
    assert seen["app"].bucket.parents_status is None
    assert [c.name for c in seen["base"].channels] == ["staging"]


def test_search_costs_the_same_statements_for_any_number_of_buckets(
    services: Services, admin: Caller
) -> None:
    def count(prefix: str, n: int) -> int:
        for i in range(n):
            name = f"{prefix}-{i}"
            services.buckets.create(admin, name, None, {"k": "v"})
            push_version(services, admin, name)
            services.channels.create(admin, name, "prod", None, False)
        with count_statements(services.store.engine) as log:
            page = services.buckets.search_page(
                admin, BucketQuery.parse(prefix, "k=v", "updated"), PageRequest(size=50)
            )
        assert len(page.items) == n
        return log.count

    assert count("few", 2) == count("many", 12)


@pytest.fixture
def lineage(services: Services, admin: Caller) -> dict[str, str]:
    """base v1 on staging; app v1 built on it through staging, then app v2 built on it too;
    staging moves to base v2 (app's edges are out of date); worker v1 built on app v2."""
    services.buckets.create(admin, "base", "The base", {"os": "ubuntu"})
    base_v1 = push_version(services, admin, "base", "base-1")
    staging = services.channels.create(admin, "base", "staging", "base-1", False)
    services.channels.create(admin, "base", "canary", "base-1", True)
    services.buckets.create(admin, "app", None, None)
    push_version(
        services, admin, "app", "app-1", parent_id=base_v1.id, parent_channel_id=staging.id
    )
    app_v2 = push_version(
        services, admin, "app", "app-2", parent_id=base_v1.id, parent_channel_id=staging.id
    )
    push_version(services, admin, "base", "base-2")
    services.channels.update(
        admin,
        "base",
        "staging",
        fingerprint="base-2",
        restricted=None,
        update_mask="versionFingerprint",
    )
    prod = services.channels.create(admin, "app", "prod", "app-2", False)
    services.buckets.create(admin, "worker", None, None)
    push_version(
        services, admin, "worker", "worker-1", parent_id=app_v2.id, parent_channel_id=prod.id
    )
    return {"base_v1": base_v1.id, "app_v2": app_v2.id}


def test_overview_of_a_bucket_with_parents_and_children(
    services: Services, admin: Caller, lineage: dict[str, str]
) -> None:
    app = services.buckets.overview(admin, "app")
    assert not app.latest_hidden
    assert app.bucket.latest_version is not None and app.bucket.latest_version.name == "v2"
    assert [c.name for c in app.channels] == ["latest", "prod"]
    assert [
        (p.parent.bucket_name, p.parent.name, p.channel_name, p.status) for p in app.parents
    ] == [("base", "v1", "staging", AncestryStatus.OUT_OF_DATE)]
    assert app.parents[0].channel_version is not None
    assert app.parents[0].channel_version.name == "v2"
    assert [(c.child.bucket_name, c.child.name, c.status) for c in app.children] == [
        ("worker", "v1", AncestryStatus.UP_TO_DATE)
    ]
    assert [v.name for v in app.versions] == ["v2", "v1"]

    base = services.buckets.overview(admin, "base")
    # one row per child bucket: its newest version built from base
    assert [(c.kind, c.child.bucket_name, c.child.name, c.status) for c in base.children] == [
        (AncestryType.CHILDREN, "app", "v2", AncestryStatus.OUT_OF_DATE)
    ]
    assert base.parents == [] and not base.children_truncated


def test_overview_for_a_viewer_hides_latest_and_restricted_channels(
    services: Services, viewer: Caller, lineage: dict[str, str]
) -> None:
    base = services.buckets.overview(viewer, "base")
    assert base.latest_hidden
    assert base.bucket.latest_version is None
    assert [c.name for c in base.channels] == ["staging"]
    assert base.parents == []
    assert services.buckets.overview(viewer, "base", channel="canary").source.error
    assert services.buckets.overview(viewer, "base", channel="latest").source.error


def test_overview_resolves_the_data_source(
    services: Services, admin: Caller, lineage: dict[str, str]
) -> None:
    default = services.buckets.overview(admin, "base").source
    assert default.channel is not None and default.channel.name == "staging"
    assert default.version is not None and default.version.name == "v2"
    assert [b.platform for b in default.version.builds] == ["aws"]

    canary = services.buckets.overview(admin, "base", channel="canary").source
    assert canary.channel is not None and canary.version is not None
    assert canary.version.name == "v1"

    pinned = services.buckets.overview(admin, "base", fingerprint="base-1").source
    assert pinned.channel is None and pinned.version is not None
    assert pinned.version.fingerprint == "base-1" and pinned.version.builds

    assert services.buckets.overview(admin, "base", fingerprint="nope").source.error
    assert services.buckets.overview(admin, "base", channel="nope").source.error
    services.channels.create(admin, "base", "empty", None, False)
    empty = services.buckets.overview(admin, "base", channel="empty").source
    assert empty.channel is not None and empty.version is None and empty.error


def test_overview_of_a_missing_bucket_is_not_found(services: Services, admin: Caller) -> None:
    with pytest.raises(ApiError) as missing:
        services.buckets.overview(admin, "nothing-here")
    assert missing.value.code is Code.NOT_FOUND


def test_overview_costs_the_same_statements_for_any_lineage_size(
    services: Services, admin: Caller
) -> None:
    def count(prefix: str, n: int) -> int:
        parent = f"{prefix}-base"
        services.buckets.create(admin, parent, None, None)
        base = push_version(services, admin, parent)
        chan = services.channels.create(admin, parent, "stable", base.fingerprint, False)
        for i in range(n):
            child = f"{prefix}-child-{i}"
            services.buckets.create(admin, child, None, None)
            for _ in range(2):
                push_version(services, admin, child, parent_id=base.id, parent_channel_id=chan.id)
            push_version(services, admin, parent)
        with count_statements(services.store.engine) as log:
            found = services.buckets.overview(admin, parent, channel="stable")
        assert len({c.child.bucket_name for c in found.children}) == n
        return log.count

    assert count("small", 1) == count("large", 8)
