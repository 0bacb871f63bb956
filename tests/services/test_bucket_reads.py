"""Reads for callers with bucket grants (both backends): a caller without a project role
sees only its buckets, everywhere (listings, search, ancestry, previews); restricted
channels and `latest` are shown per bucket; the number of statements does not depend on
the grants."""

from __future__ import annotations

import pytest

from packyard.domain.enums import AncestryType, Role
from packyard.domain.models import Caller
from packyard.domain.overview import BucketQuery
from packyard.domain.paging import PageRequest
from packyard.errors import ApiError, Code
from packyard.services.container import Services
from tests.support.bucket_reads import Scene, build_scene, granted
from tests.support.factories import TenantFixture
from tests.support.querycount import count_statements
from tests.support.revocation import request


@pytest.fixture
def scene(services: Services, tenant: TenantFixture) -> Scene:
    return build_scene(services, tenant)


@pytest.fixture
def bucket_only(tenant: TenantFixture, scene: Scene) -> Caller:
    """No project role: contributor on ``a``, viewer on ``app``; ``b`` and ``other`` unseen."""
    return granted(tenant, None, {scene.a.id: Role.CONTRIBUTOR, scene.app.id: Role.VIEWER})


@pytest.fixture
def viewer_plus_a(tenant: TenantFixture, scene: Scene) -> Caller:
    """Project viewer with a contributor grant on ``a`` (HCP's documented case)."""
    return granted(tenant, Role.VIEWER, {scene.a.id: Role.CONTRIBUTOR})


def test_a_caller_without_project_role_lists_and_finds_only_its_buckets(
    services: Services, scene: Scene, bucket_only: Caller
) -> None:
    mine = sorted([scene.a.name, scene.app.name])
    listed = services.buckets.list_page(bucket_only, PageRequest(size=50))
    assert [b.name for b in listed.items] == mine
    searched = services.buckets.search_page(bucket_only, BucketQuery(), PageRequest(size=50))
    assert [s.bucket.name for s in searched.items] == mine

    def hits(ami: str) -> list[str]:
        page = services.search.external_artifact(
            bucket_only, ami, platform=None, region=None, page=PageRequest(size=10)
        )
        return [h.bucket_name for h in page.items]

    assert hits(scene.a1.ami) == [scene.a.name]
    assert hits(scene.b1.ami) == []
    with pytest.raises(ApiError) as missing:
        services.versions.detail(bucket_only, scene.b.name, scene.b1.fingerprint)
    assert missing.value.code is Code.NOT_FOUND


def test_ancestry_leaves_out_edges_to_buckets_the_caller_cannot_see(
    services: Services, scene: Scene, bucket_only: Caller
) -> None:
    parents = services.ancestry.list_page(
        bucket_only,
        scene.app.name,
        ancestry_type=AncestryType.PARENTS.value,
        version_fingerprint=scene.app1.fingerprint,
        channel_name=None,
        page=PageRequest(size=10),
    )
    assert parents.total == 1
    assert [r.parent.bucket_name for r in parents.items] == [scene.a.name]
    children = services.ancestry.list_page(
        bucket_only,
        scene.a.name,
        ancestry_type=AncestryType.CHILDREN.value,
        version_fingerprint=None,
        channel_name=None,
        page=PageRequest(size=10),
    )
    assert children.total == 1
    assert [r.child.bucket_name for r in children.items] == [scene.app.name]

    lineage = services.ancestry.lineage(bucket_only, scene.a.name)
    assert {v.bucket_name for v in lineage.nodes.values()} == {scene.a.name, scene.app.name}
    assert [(e.parent_id, e.child_id) for e in lineage.edges] == [(scene.a1.id, scene.app1.id)]

    detail = services.versions.detail(bucket_only, scene.app.name, scene.app1.fingerprint)
    assert [r.version.bucket_name for r in detail.relations.parents] == [scene.a.name]
    relations = services.versions.detail(bucket_only, scene.a.name, scene.a1.fingerprint).relations
    assert [r.version.bucket_name for r in relations.children] == [scene.app.name]
    assert relations.children_total == 1

    page = services.buckets.overview(bucket_only, scene.a.name)
    assert {r.child.bucket_name for r in page.children} == {scene.app.name}


def test_restricted_channels_and_latest_are_shown_per_bucket(
    services: Services, scene: Scene, viewer_plus_a: Caller
) -> None:
    page = services.buckets.list_page(viewer_plus_a, PageRequest(size=50))
    listed = {b.name: b.latest_version for b in page.items}
    latest_a = listed[scene.a.name]
    assert latest_a is not None and latest_a.id == scene.a1.id
    assert listed[scene.b.name] is None  # b's `latest` is restricted
    summaries = services.buckets.search_page(viewer_plus_a, BucketQuery(), PageRequest(size=50))
    hidden = {s.bucket.name: s.latest_hidden for s in summaries.items}
    assert hidden[scene.a.name] is False and hidden[scene.b.name] is True
    chips = {s.bucket.name: [c.name for c in s.channels] for s in summaries.items}
    assert chips[scene.a.name] == ["gold"] and chips[scene.b.name] == []

    assert {c.name for c in services.channels.list_all(viewer_plus_a, scene.a.name)} == {
        "latest",
        "gold",
    }
    assert services.channels.list_all(viewer_plus_a, scene.b.name) == []
    with pytest.raises(ApiError) as denied:
        services.channels.get(viewer_plus_a, scene.b.name, "gold")
    assert denied.value.code is Code.PERMISSION_DENIED

    # One read across buckets: a's restricted channel is named, b's is not.
    detail = services.versions.detail(viewer_plus_a, scene.app.name, scene.app1.fingerprint)
    assert {r.version.bucket_name: r.channel_name for r in detail.relations.parents} == {
        scene.a.name: "gold",
        scene.b.name: "",
    }
    serving = services.versions.detail(viewer_plus_a, scene.a.name, scene.a1.fingerprint)
    assert {c.name for c in serving.channels} == {"latest", "gold"}
    assert (
        services.versions.detail(viewer_plus_a, scene.b.name, scene.b1.fingerprint).channels == []
    )


def test_revocation_previews_count_what_they_cannot_show(
    services: Services, tenant: TenantFixture, scene: Scene, bucket_only: Caller
) -> None:
    now = request(revoke_in="0s")
    preview = services.revocation.preview(bucket_only, scene.a.name, scene.a1.fingerprint, now)
    assert [d.version.bucket_name for d in preview.descendants] == [scene.app.name]
    assert preview.descendants_revoked == 2
    assert preview.hidden_descendants == 1
    # a's channels are listed; app's restricted `latest` (a viewer grant) and other's
    # `latest` (unseen bucket) roll back too but are only counted.
    assert {(c.bucket_name, c.channel_name) for c in preview.channels} == {
        (scene.a.name, "latest"),
        (scene.a.name, "gold"),
    }
    assert preview.hidden_channels == 2

    project_viewer = granted(tenant, Role.VIEWER, {scene.a.id: Role.CONTRIBUTOR})
    wider = services.revocation.preview(project_viewer, scene.a.name, scene.a1.fingerprint, now)
    assert {d.version.bucket_name for d in wider.descendants} == {scene.app.name, scene.other.name}
    assert wider.hidden_descendants == 0
    assert wider.hidden_channels == 2  # both restricted `latest` channels

    admin = tenant.caller(Role.ADMIN)
    everything = services.revocation.preview(admin, scene.a.name, scene.a1.fingerprint, now)
    assert len(everything.channels) == 4 and everything.hidden_channels == 0

    services.revocation.revoke(admin, scene.a.name, scene.a1.fingerprint, now)
    restore = services.revocation.restore_preview(bucket_only, scene.a.name, scene.a1.fingerprint)
    assert [v.bucket_name for v in restore.descendants] == [scene.app.name]
    assert restore.descendants_restored == 2
    assert restore.hidden_descendants == 1


def test_inherited_revocations_do_not_name_an_unseen_origin(
    services: Services, tenant: TenantFixture, scene: Scene
) -> None:
    admin = tenant.caller(Role.ADMIN)
    services.revocation.revoke(admin, scene.b.name, scene.b1.fingerprint, request(revoke_in="0s"))
    app_only = granted(tenant, None, {scene.app.id: Role.VIEWER})
    version = services.versions.get(app_only, scene.app.name, scene.app1.fingerprint)
    assert version.revoke_at is not None
    assert version.revocation_inherited_from is None
    shown = services.versions.get(admin, scene.app.name, scene.app1.fingerprint)
    assert shown.revocation_inherited_from is not None
    assert shown.revocation_inherited_from.bucket_name == scene.b.name


def test_has_descendants_counts_only_descendants_the_caller_sees(
    services: Services, tenant: TenantFixture, scene: Scene
) -> None:
    # b1's only descendant is app1: invisible to a caller who sees b alone
    b_only = granted(tenant, None, {scene.b.id: Role.VIEWER})
    assert not services.versions.get(b_only, scene.b.name, scene.b1.fingerprint).has_descendants
    with_app = granted(tenant, None, {scene.b.id: Role.VIEWER, scene.app.id: Role.VIEWER})
    assert services.versions.get(with_app, scene.b.name, scene.b1.fingerprint).has_descendants
    viewer = tenant.caller(Role.VIEWER)
    assert services.versions.get(viewer, scene.b.name, scene.b1.fingerprint).has_descendants


def test_grants_do_not_change_the_number_of_statements(
    services: Services, tenant: TenantFixture, scene: Scene, bucket_only: Caller
) -> None:
    def count(caller: Caller) -> list[int]:
        counts = []
        for read in (
            lambda: services.buckets.list_page(caller, PageRequest(size=50)),
            lambda: services.buckets.search_page(caller, BucketQuery(), PageRequest(size=50)),
            lambda: services.buckets.overview(caller, scene.a.name),
            lambda: services.ancestry.lineage(caller, scene.a.name),
            lambda: services.versions.detail(caller, scene.a.name, scene.a1.fingerprint),
        ):
            with count_statements(services.store.engine) as log:
                read()
            counts.append(log.count)
        return counts

    # The same view through forty more grants costs the same: grants are filtered in SQL.
    many = {f"01UNSEEN{i:018d}": Role.CONTRIBUTOR for i in range(40)}
    many.update(bucket_only.bucket_roles)
    assert count(granted(tenant, None, many)) == count(bucket_only)
