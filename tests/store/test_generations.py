"""Generation keys: which counters a write moves, which a response depends on, and the probe."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import select, text

from packyard.services.container import Services
from packyard.store import generations
from packyard.store.engine import Store
from packyard.store.generations import Buckets, current, dependencies
from packyard.store.migrate import alembic_config, upgrade
from packyard.store.probe import open_probe
from packyard.store.schema import cache_generations
from tests.support.factories import TenantFixture, unique
from tests.support.revocation import new_buckets
from tests.support.robust import push_version

P = "project-under-test"


def counters(store: Store) -> dict[tuple[str, str], int]:
    with store.read() as conn:
        rows = conn.execute(select(cache_generations)).all()
    return {(r.scope, r.bucket): r.generation for r in rows if r.scope in (P, "*")}


def sums(store: Store, *keys: Buckets) -> list[int]:
    with store.read() as conn:
        return [current(conn, P, k) for k in keys]


def test_a_confined_write_moves_only_its_buckets(store: Store) -> None:
    before = sums(store, ("a",), ("b",), None)
    with store.write(P) as conn:
        generations.confine(conn, "a")
        generations.touch(conn, "parent")
    a, b, every = sums(store, ("a",), ("b",), None)
    assert (a, b) == (before[0] + 1, before[1])
    assert every == before[2] + 2  # project-wide reads see any bucket's write
    assert sums(store, ("b", "parent")) == [before[1] + 1]


def test_only_a_revealing_write_moves_what_the_neighbours_see(store: Store) -> None:
    before = sums(store, ("a",), ("a/",))
    with store.write(P) as conn:
        generations.confine(conn, "a")
    assert sums(store, ("a",), ("a/",)) == [before[0] + 1, before[1]]
    with store.write(P) as conn:
        generations.confine(conn, "a")
        generations.reveal(conn, "a")
    with store.write(P) as conn:
        generations.confine(conn, "a", reveal=True)
    assert sums(store, ("a",), ("a/",)) == [before[0] + 3, before[1] + 2]


def test_a_write_that_did_not_confine_itself_moves_the_project(store: Store) -> None:
    before = sums(store, ("a",), ("b",))
    with store.write(P) as conn:
        generations.touch(conn, "a")  # touching alone declares nothing
    assert sums(store, ("a",), ("b",)) == [n + 1 for n in before]
    assert counters(store)[(P, "")] >= 1
    assert (P, "a") not in counters(store)


def test_a_write_naming_no_project_moves_every_key(store: Store) -> None:
    before = sums(store, ("a",), None)
    with store.write() as conn:
        generations.confine(conn, "a")  # without a project there is no bucket key to move
    assert sums(store, ("a",), None) == [n + 1 for n in before]


def test_a_failed_confined_write_does_not_confine_the_next_one(store: Store) -> None:
    """The declaration lives with its transaction: the connection, reused, starts clean."""
    with pytest.raises(RuntimeError), store.write(P) as conn:
        generations.confine(conn, "a")
        raise RuntimeError
    before = sums(store, ("b",))
    with store.write(P):
        pass
    assert sums(store, ("b",)) == [before[0] + 1]


@pytest.mark.parametrize("keys", [("a",), ("a", "b", "c"), None], ids=["one", "three", "all"])
def test_the_probe_reads_what_current_reads(store: Store, keys: Buckets) -> None:
    for bucket in ("a", "b", "zz"):
        with store.write(P) as conn:
            generations.confine(conn, bucket)
    with store.write(P):
        pass
    with store.write():
        pass
    probe = open_probe(store)
    assert probe is not None

    async def probed() -> int | None:
        try:
            return await probe.generation(P, keys)
        finally:
            await probe.aclose()

    assert asyncio.run(probed()) == sums(store, keys)[0]


def test_a_bucket_depends_on_the_buckets_one_edge_away(
    services: Services, tenant: TenantFixture
) -> None:
    caller = tenant.caller()
    base, app, leaf, other = new_buckets(services, caller, "base", "app", "leaf", "other")
    b1 = push_version(services, caller, base, "base-1")
    a1 = push_version(services, caller, app, "app-1", parent_version_id=b1.id)
    push_version(services, caller, leaf, "leaf-1", parent_version_id=a1.id)
    push_version(services, caller, other, "other-1")
    with services.store.read() as conn:
        project = tenant.project_id
        assert dependencies(conn, project, app) == tuple(sorted((f"{base}/", app, f"{leaf}/")))
        assert dependencies(conn, project, base) == tuple(sorted((base, f"{app}/")))
        assert dependencies(conn, project, other) == (other,)
        assert dependencies(conn, project, "missing") == ("missing",)


def test_a_bucket_with_many_neighbours_depends_on_every_key(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caller = tenant.caller()
    base = unique("base")
    services.buckets.create(caller, base, None, None)
    b1 = push_version(services, caller, base, "base-1")
    for n in range(3):
        child = unique("child")
        services.buckets.create(caller, child, None, None)
        push_version(services, caller, child, f"c-{n}", parent_version_id=b1.id)
    monkeypatch.setattr(generations, "MAX_NEIGHBOURS", 2)
    with services.store.read() as conn:
        assert dependencies(conn, tenant.project_id, base) is None


def test_migration_0011_keeps_every_sum(store: Store) -> None:
    """Counters carry over both ways: no response cached before the change becomes valid."""
    cfg = alembic_config()
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
        conn.execute(text("DELETE FROM cache_generations"))
        conn.execute(text("INSERT INTO cache_generations VALUES (:p, 7), ('*', 3)"), {"p": P})
        conn.commit()
    upgrade(store)
    assert counters(store) == {(P, ""): 7, ("*", ""): 3}
    with store.write(P) as conn:
        generations.confine(conn, "a")
    assert sums(store, ("a",)) == [11]
    with store.engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0010")
        rows = conn.execute(text("SELECT scope, generation FROM cache_generations")).all()
        conn.commit()
    upgrade(store)
    assert sorted((r[0], int(r[1])) for r in rows) == sorted([(P, 8), ("*", 3)])
