"""Reads filtered by a restricted scope and by visible buckets, in SQL (both backends):
a set of buckets shows the restricted channels of those buckets only; an empty set is
``False``; ``True``/``False`` run the statements built once at import."""

from __future__ import annotations

from typing import Any

import pytest

from packyard.domain.access import RestrictedScope
from packyard.domain.enums import AncestryStatus, AncestryType, Role
from packyard.domain.overview import BucketQuery
from packyard.domain.paging import PageRequest
from packyard.services.container import Services
from packyard.store import overview
from packyard.store.ancestry import _RELATIONS, AncestryRepo, LineageRepo, _relations_query
from packyard.store.channels import ChannelRepo
from packyard.store.imagecheck import ImageCheckRepo
from packyard.store.versions import PARENT_EDGES, VersionRepo
from tests.support.bucket_reads import Scene, build_scene, move_b_gold_on
from tests.support.factories import TenantFixture


@pytest.fixture
def scene(services: Services, tenant: TenantFixture) -> Scene:
    return build_scene(services, tenant)


def _parents(services: Services, scene: Scene, scope: RestrictedScope) -> dict[str, Any]:
    """The parent relations of app1, by parent bucket: (channel shown, status)."""
    with services.store.read() as conn:
        page = AncestryRepo(conn).relations_page(
            scene.app.id,
            parents_of=scene.app1.id,
            include_children=False,
            children_channel_id=None,
            include_restricted=scope,
            page=PageRequest(size=10),
        )
    assert page.total == 2
    assert {r.kind for r in page.items} == {AncestryType.PARENTS}
    return {r.parent.bucket_name: (r.channel_name, r.status) for r in page.items}


def test_a_set_scope_shows_the_restricted_channels_of_its_buckets_only(
    services: Services, scene: Scene
) -> None:
    found = _parents(services, scene, frozenset({scene.a.id}))
    assert found == {
        scene.a.name: ("gold", AncestryStatus.UP_TO_DATE),
        scene.b.name: ("", AncestryStatus.UNDETERMINED),
    }
    everything = _parents(services, scene, True)
    assert everything[scene.b.name] == ("gold", AncestryStatus.UP_TO_DATE)
    nothing = _parents(services, scene, False)
    assert nothing[scene.a.name] == ("", AncestryStatus.UNDETERMINED)
    assert _parents(services, scene, frozenset()) == nothing


def test_channel_listings_and_chips_follow_the_scope(services: Services, scene: Scene) -> None:
    scope = frozenset({scene.a.id})
    with services.store.read() as conn:
        repo = ChannelRepo(conn)
        in_a = {c.name for c in repo.for_bucket(scene.a.id, include_restricted=scope)}
        in_b = {c.name for c in repo.for_bucket(scene.b.id, include_restricted=scope)}
        chips = overview.channel_chips(conn, [scene.a.id, scene.b.id], include_restricted=scope)
        none_chips = overview.channel_chips(
            conn, [scene.a.id, scene.b.id], include_restricted=frozenset()
        )
        served = ImageCheckRepo(conn).served_by_channels(
            scene.a.project_id, [scene.a.name, scene.b.name], include_restricted=scope
        )
    assert in_a == {"latest", "gold"}
    assert in_b == set()  # `latest` is restricted too
    assert [c.name for c in chips[scene.a.id]] == ["gold"]
    assert scene.b.id not in chips
    assert dict(none_chips) == {}
    assert {(r.bucket_name, r.channel_name) for r in served} == {
        (scene.a.name, "gold"),
        (scene.a.name, "latest"),
    }


def test_lineage_and_relations_name_only_the_channels_in_scope(
    services: Services, scene: Scene
) -> None:
    scope = frozenset({scene.a.id})
    with services.store.read() as conn:
        lineage = LineageRepo(conn).lineage(scene.app.id, scene.app.name, include_restricted=scope)
        relations = LineageRepo(conn).relations(scene.app1.id, include_restricted=scope)
    through = {
        lineage.nodes[e.parent_id].bucket_name: e.channel_name
        for e in lineage.edges
        if e.child_id == scene.app1.id
    }
    assert through == {scene.a.name: "gold", scene.b.name: ""}
    assert {r.version.bucket_name: r.channel_name for r in relations.parents} == through


def test_hydrated_status_depends_on_restricted_channels_in_scope_only(
    services: Services, tenant: TenantFixture, scene: Scene
) -> None:
    admin = tenant.caller(Role.ADMIN)
    move_b_gold_on(services, admin, scene)

    def status(scope: RestrictedScope) -> AncestryStatus | None:
        with services.store.read() as conn:
            version = VersionRepo(conn).get_by_id(scene.app1.id)
            assert version is not None
            VersionRepo(conn).hydrate([version], include_restricted=scope)
        return version.parents_status

    # b's gold moved on: out of date for whoever sees it, no channel for the others.
    assert status(True) is AncestryStatus.OUT_OF_DATE
    assert status(frozenset({scene.b.id})) is AncestryStatus.OUT_OF_DATE
    assert status(frozenset({scene.a.id})) is AncestryStatus.UP_TO_DATE
    assert status(False) is AncestryStatus.UNDETERMINED
    assert status(frozenset()) is AncestryStatus.UNDETERMINED


def test_invisible_buckets_are_left_out_of_relations_and_totals(
    services: Services, scene: Scene
) -> None:
    visible = frozenset({scene.a.id, scene.app.id})
    with services.store.read() as conn:
        parents = AncestryRepo(conn).relations_page(
            scene.app.id,
            parents_of=scene.app1.id,
            include_children=False,
            children_channel_id=None,
            include_restricted=True,
            page=PageRequest(size=10),
            visible=visible,
        )
        children = AncestryRepo(conn).relations_page(
            scene.a.id,
            parents_of=None,
            include_children=True,
            children_channel_id=None,
            include_restricted=True,
            page=PageRequest(size=1),
            visible=visible,
        )
        relations = LineageRepo(conn).relations(
            scene.a1.id, include_restricted=True, visible=visible
        )
        lineage = LineageRepo(conn).lineage(
            scene.a.id, scene.a.name, include_restricted=True, visible=visible
        )
        buckets = overview.search_buckets(
            conn, scene.a.project_id, BucketQuery(), PageRequest(size=10), visible=visible
        )
    assert parents.total == 1
    assert [r.parent.bucket_name for r in parents.items] == [scene.a.name]
    assert children.total == 1
    assert not children.next_token
    assert [r.child.bucket_name for r in children.items] == [scene.app.name]
    assert [r.version.bucket_name for r in relations.children] == [scene.app.name]
    assert relations.children_total == 1
    assert {v.bucket_name for v in lineage.nodes.values()} == {scene.a.name, scene.app.name}
    assert {(e.parent_id, e.child_id) for e in lineage.edges} == {(scene.a1.id, scene.app1.id)}
    assert [b.name for b in buckets.items] == sorted([scene.a.name, scene.app.name])


def test_all_or_nothing_scopes_use_the_statements_built_at_import() -> None:
    edges = PARENT_EDGES.statement
    assert edges(True, None) is edges(True, None)
    assert edges(False, None) is edges(frozenset(), None) is not edges(True, None)
    assert edges(frozenset({"b"}), None) is not edges(frozenset({"b"}), None)
    assert edges(True, frozenset({"b"})) is not edges(True, None)
    assert _relations_query("parents", frozenset(), None) is _RELATIONS["parents", False]
    assert _relations_query("children", True, None) is _RELATIONS["children", True]
