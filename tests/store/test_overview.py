"""The console bucket page's children (``overview.child_relations``): per child bucket, the
edges from the bucket into that child bucket's newest version built from it, compared with
their definition on random graphs on both backends, and read by seeking each child bucket
(the statement's plan starts from the child buckets, not from the bucket's every edge)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection

from packyard.services.container import Services
from packyard.store import overview
from packyard.store.lean import LeanSelect
from packyard.store.schema import buckets, version_edges, versions
from tests.support.factories import TenantFixture

_AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PARENT = "p"


@dataclass
class Edges:
    """Version ids by bucket, and edges as (child version, parent version, child bucket,
    parent bucket, recorded at minute)."""

    versions_of: dict[str, list[str]] = field(default_factory=dict)
    edges: list[tuple[str, str, str, str, int]] = field(default_factory=list)


def _graph(services: Services, tenant: TenantFixture, rng: random.Random) -> Edges:
    """A parent bucket, child buckets whose versions were built from one or two of its
    versions (recorded at random minutes, ties included), and edges from other buckets."""
    children = [f"c{i}" for i in rng.sample(range(10), rng.randint(1, 7))]
    graph = Edges()
    rows: dict[str, list[dict[str, object]]] = {"b": [], "v": [], "e": []}
    for b in [PARENT, "other", *children]:
        rows["b"].append(
            {"id": b, "project_id": tenant.project_id, "name": f"name-{b}", "description": "",
             "labels": {}, "version_count": 0, "created_at": _AT, "updated_at": _AT}
        )  # fmt: skip
        graph.versions_of[b] = [f"{b}-v{j:02d}" for j in range(rng.randint(1, 5))]
        for number, v in enumerate(graph.versions_of[b], 1):
            rows["v"].append(
                {"id": v, "bucket_id": b, "fingerprint": v, "number": number,
                 "template_type": "HCL2", "author_id": "t", "created_at": _AT, "updated_at": _AT}
            )  # fmt: skip
    for child in children:
        for cv in graph.versions_of[child]:
            for parent in rng.sample([PARENT, "other"], rng.randint(0, 2)):
                pvs = graph.versions_of[parent]
                for pv in rng.sample(pvs, rng.randint(1, min(2, len(pvs)))):
                    graph.edges.append((cv, pv, child, parent, rng.randint(0, 4)))
    for cv, pv, child, parent, minute in graph.edges:
        rows["e"].append(
            {"child_version_id": cv, "parent_version_id": pv, "parent_channel_id": None,
             "child_bucket_id": child, "parent_bucket_id": parent,
             "created_at": _AT + timedelta(minutes=minute)}
        )  # fmt: skip
    with services.store.write(tenant.project_id) as conn:
        for table, key in ((buckets, "b"), (versions, "v"), (version_edges, "e")):
            if rows[key]:
                conn.execute(table.insert(), rows[key])
    return graph


def _expected(
    graph: Edges, limit: int, visible: frozenset[str] | None
) -> tuple[list[tuple[str, str, str]], bool]:
    """(child bucket name, child version, parent version) of the edges from PARENT into each
    child bucket's version whose edge from PARENT was recorded last (higher id on a tie),
    by child bucket name, then parent version number (newest first); and whether more
    child buckets than ``limit`` have one."""
    from_parent = [e for e in graph.edges if e[3] == PARENT]
    recorded: dict[str, int] = {}
    for cv, _, _, _, minute in from_parent:
        recorded[cv] = max(recorded.get(cv, minute), minute)
    newest: dict[str, str] = {}
    for cv, _, child, _, _ in from_parent:
        if visible is None or child in visible:
            best = newest.get(child)
            if best is None or (recorded[cv], cv) > (recorded[best], best):
                newest[child] = cv
    number = {v: n for vs in graph.versions_of.values() for n, v in enumerate(vs, 1)}
    rows = sorted(
        (
            (f"name-{child}", cv, pv)
            for cv, pv, child, _, _ in from_parent
            if newest.get(child) == cv
        ),
        key=lambda r: (r[0], -number[r[2]], r[2]),
    )
    shown = sorted({r[0] for r in rows})[:limit]
    return [r for r in rows if r[0] in shown], len({r[0] for r in rows}) > limit


def _read(
    conn: Connection, limit: int, visible: frozenset[str] | None
) -> tuple[list[tuple[str, str, str]], bool]:
    found, more = overview.child_relations(
        conn, PARENT, include_restricted=True, limit=limit, visible=visible
    )
    return [(r.child.bucket_name, r.child.id, r.parent.id) for r in found], more


@pytest.mark.parametrize("seed", range(16))
def test_children_are_the_newest_version_of_each_child_bucket(
    services: Services, tenant: TenantFixture, seed: int
) -> None:
    rng = random.Random(seed)
    graph = _graph(services, tenant, rng)
    children = sorted({e[2] for e in graph.edges})
    some = frozenset(rng.sample(children, rng.randint(0, len(children)))) if children else None
    with services.store.read() as conn:
        for limit in (1, 3, 10):
            for visible in (None, some, frozenset()):
                assert _read(conn, limit, visible) == _expected(graph, limit, visible)


def test_the_plan_starts_from_the_child_buckets(services: Services, tenant: TenantFixture) -> None:
    """SQLite (no statistics, as Packyard runs it) reads the edges of the newest versions by
    their key, never the bucket's every edge through an index on the parent bucket."""
    if not services.store.is_sqlite:
        pytest.skip("PostgreSQL plans from its statistics")
    statement = overview._CHILD_RELATIONS.statement(True, None)
    assert isinstance(statement, LeanSelect)
    with services.store.read() as conn:
        compiled = statement.statement.compile(dialect=conn.dialect)
        values = compiled.construct_params({"bucket_id": PARENT, "rows": 41})
        args = tuple(values[name] for name in compiled.positiontup or ())
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", args)]
    edge_reads = [step for step in plan if step.startswith("SEARCH version_edges ")]
    assert edge_reads == [
        "SEARCH version_edges USING INDEX sqlite_autoindex_version_edges_1 (child_version_id=?)"
    ]
    walk = [step for step in plan if step.startswith("SEARCH k ")]
    assert walk and all("ix_version_edges_parent_child" in step for step in walk)
