"""A bucket's children roll-up (``children.status`` of GetBucket and ListBuckets), read by
seeking each channel the child edges were recorded through, is the roll-up of every
edge's own status (the definition: :func:`edge_status`, :func:`aggregate_status`), for
random ancestry graphs on both backends and for every kind of caller: edges through no
channel, a deleted, unassigned or restricted channel, versions before and after the one
a channel serves, callers who may not see restricted channels or some buckets."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from packyard.domain.access import visible_buckets
from packyard.domain.enums import AncestryStatus, Role
from packyard.domain.models import Caller
from packyard.domain.paging import PageRequest
from packyard.domain.rules import aggregate_status, edge_status
from packyard.domain.visibility import sees_restricted_channels
from packyard.services.container import Services
from packyard.store.schema import buckets, channels, version_edges, versions
from tests.support.bucket_reads import granted
from tests.support.factories import TenantFixture
from tests.support.querycount import count_statements

_AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


@dataclass
class Graph:
    bucket_ids: list[str]
    versions_of: dict[str, list[str]] = field(default_factory=dict)
    # channel id -> (bucket id, restricted, version served); deleted channels are absent
    channels: dict[str, tuple[str, bool, str | None]] = field(default_factory=dict)
    # (child version, parent version, parent channel, child bucket, parent bucket)
    edges: list[tuple[str, str, str | None, str, str]] = field(default_factory=list)


def _random_graph(services: Services, tenant: TenantFixture, rng: random.Random, n: int) -> Graph:
    """Buckets with versions, channels (some restricted, unassigned or deleted) and edges
    between versions of different buckets, written straight into the tables."""
    graph = Graph([f"{n:02d}-b{i}" for i in range(rng.randint(2, 5))])
    rows: dict[str, list[dict[str, object]]] = {"b": [], "v": [], "c": [], "e": []}
    deleted: list[str] = []
    for b in graph.bucket_ids:
        rows["b"].append(
            {"id": b, "project_id": tenant.project_id, "name": b, "description": "",
             "labels": {}, "version_count": 0, "created_at": _AT, "updated_at": _AT}
        )  # fmt: skip
        # Ids of equal length sort as their numbers: the serving version is first,
        # last or in between.
        vs = [f"{b}-v{j:02d}" for j in range(rng.randint(1, 6))]
        graph.versions_of[b] = vs
        for number, v in enumerate(vs, 1):
            rows["v"].append(
                {"id": v, "bucket_id": b, "fingerprint": v, "number": number,
                 "template_type": "HCL2", "author_id": "t", "created_at": _AT,
                 "updated_at": _AT}
            )  # fmt: skip
        for k in range(rng.randint(0, 3)):
            channel = f"{b}-c{k}"
            restricted = rng.random() < 0.3
            serving = rng.choice([*vs, None])
            if rng.random() < 0.2:
                deleted.append(channel)
                continue
            graph.channels[channel] = (b, restricted, serving)
            rows["c"].append(
                {"id": channel, "bucket_id": b, "name": f"c{k}", "restricted": restricted,
                 "version_id": serving, "author_id": "t", "created_at": _AT, "updated_at": _AT}
            )  # fmt: skip
    for child in graph.bucket_ids:
        for cv in graph.versions_of[child]:
            parents = [b for b in graph.bucket_ids if b != child]
            for parent in rng.sample(parents, rng.randint(0, min(2, len(parents)))):
                own = [c for c, (b, _, _) in graph.channels.items() if b == parent]
                gone = [c for c in deleted if c.startswith(f"{parent}-")]
                through = rng.choice([None, *own, *own, *gone])
                pv = rng.choice(graph.versions_of[parent])
                graph.edges.append((cv, pv, through, child, parent))
                rows["e"].append(
                    {"child_version_id": cv, "parent_version_id": pv,
                     "parent_channel_id": through, "child_bucket_id": child,
                     "parent_bucket_id": parent, "created_at": _AT}
                )  # fmt: skip
    with services.store.write(tenant.project_id) as conn:
        for table, key in ((buckets, "b"), (versions, "v"), (channels, "c"), (version_edges, "e")):
            if rows[key]:
                conn.execute(table.insert(), rows[key])
    return graph


def _expected(graph: Graph, caller: Caller) -> dict[str, AncestryStatus | None]:
    """Every edge's status, as the ancestry listing gives it, rolled up per parent."""
    visible = visible_buckets(caller)
    statuses: dict[str, list[AncestryStatus]] = {b: [] for b in graph.bucket_ids}
    for _, parent_version, through, child, parent in graph.edges:
        if visible is not None and child not in visible:
            continue
        channel = graph.channels.get(through) if through else None
        seen = channel is not None and (
            not channel[1] or sees_restricted_channels(caller, channel[0])
        )
        statuses[parent].append(
            edge_status(
                through if seen else None,
                channel[2] if channel and seen else None,
                parent_version,
                channel_exists=seen,
            )
        )
    return {b: aggregate_status(s) for b, s in statuses.items()}


def _callers(tenant: TenantFixture, graph: Graph, rng: random.Random) -> list[Caller]:
    some = rng.sample(graph.bucket_ids, rng.randint(1, len(graph.bucket_ids)))
    return [
        tenant.caller(Role.ADMIN),
        tenant.caller(Role.VIEWER),  # no restricted channel
        granted(tenant, None, {b: rng.choice([Role.VIEWER, Role.CONTRIBUTOR]) for b in some}),
        granted(tenant, Role.VIEWER, {some[0]: Role.CONTRIBUTOR}),
    ]


@pytest.mark.parametrize("seed", range(12))
def test_the_roll_up_is_that_of_every_edge(
    services: Services, tenant: TenantFixture, seed: int
) -> None:
    rng = random.Random(seed)
    graph = _random_graph(services, tenant, rng, seed)
    for caller in _callers(tenant, graph, rng):
        listed = services.buckets.list_page(caller, PageRequest(size=50))
        got = {b.id: b.children_status for b in listed.items}
        expected = _expected(graph, caller)
        assert got == {b: expected[b] for b in got}, caller
        for b in got:
            assert services.buckets.get(caller, b).children_status == expected[b]


def test_statements_do_not_grow_with_the_children(
    services: Services, tenant: TenantFixture
) -> None:
    rng = random.Random(7)
    graph = _random_graph(services, tenant, rng, 99)
    caller = tenant.caller(Role.ADMIN)
    with count_statements(services.store.engine) as few:
        services.buckets.list_page(caller, PageRequest(size=50))
    child, parent = graph.bucket_ids[0], graph.bucket_ids[1]
    through = [None, *(c for c, (b, _, _) in graph.channels.items() if b == parent)]
    extra = [f"{child}-extra{i:03d}" for i in range(60)]
    with services.store.write(tenant.project_id) as conn:
        conn.execute(
            versions.insert(),
            [{"id": v, "bucket_id": child, "fingerprint": v, "number": None,
              "template_type": "HCL2", "author_id": "t", "created_at": _AT, "updated_at": _AT}
             for v in extra],
        )  # fmt: skip
        conn.execute(
            version_edges.insert(),
            [{"child_version_id": v, "parent_version_id": rng.choice(graph.versions_of[parent]),
              "parent_channel_id": rng.choice(through), "child_bucket_id": child,
              "parent_bucket_id": parent, "created_at": _AT}
             for v in extra],
        )  # fmt: skip
    with count_statements(services.store.engine) as many:
        services.buckets.list_page(caller, PageRequest(size=50))
    assert len(many.statements) == len(few.statements)
