"""Revocation at scale: set-based, bounded, atomic (both backends)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from packyard.domain.enums import Role
from packyard.domain.models import MANAGED_AUTHOR
from packyard.domain.rules import utcnow
from packyard.services.container import Services
from packyard.store import journal
from packyard.store.forest import USER_CHANNEL, Forest, seed_forest
from packyard.store.schema import channel_assignments, channels, versions
from tests.support.factories import TenantFixture
from tests.support.querycount import count_statements
from tests.support.revocation import INHERITED, request, revocation_snapshot

FOREST = 2_000
BUCKETS = 40


def _channels(services: Services, forest: Forest) -> dict[tuple[str, str], str | None]:
    with services.store.read() as conn:
        rows = conn.execute(
            select(channels.c.bucket_id, channels.c.name, channels.c.version_id).where(
                channels.c.bucket_id.in_(forest.bucket_ids)
            )
        )
        return {(r.bucket_id, r.name): r.version_id for r in rows}


def test_revoking_a_2000_descendant_forest(services: Services, tenant: TenantFixture) -> None:
    forest = seed_forest(
        services.store, tenant.project_id, descendants=FOREST, buckets_count=BUCKETS
    )
    caller = tenant.caller(Role.ADMIN)
    started = time.monotonic()
    root = services.revocation.update(
        caller,
        forest.root_bucket,
        forest.root_fingerprint,
        request(revoke_in="0s", message="CVE-2026-0001"),
    )
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"revoking {FOREST} descendants took {elapsed:.1f}s"
    assert root.revocation_type is not None and root.revocation_type.value == "MANUAL"
    assert root.revoke_at is not None

    snapshot = revocation_snapshot(services.store, forest.descendant_ids)
    assert len(snapshot) == FOREST
    for revoke_at, kind, origin, applied in snapshot.values():
        assert (revoke_at, kind, origin, applied) == (
            root.revoke_at,
            INHERITED,
            forest.root_id,
            True,
        )

    # Every channel of every bucket (user channels and `latest`) is back on its base version.
    served = _channels(services, forest)
    assert len(served) == 2 * BUCKETS
    for b, bucket_id in enumerate(forest.bucket_ids):
        assert served[(bucket_id, "latest")] == forest.base_ids[b]
        assert served[(bucket_id, USER_CHANNEL)] == forest.base_ids[b]
        assert (
            services.buckets.get(caller, forest.bucket_names[b]).latest_version_id
            == (forest.base_ids[b])
        )
    with services.store.read() as conn:
        rollbacks = conn.execute(
            select(channel_assignments.c.author_id, func.count())
            .where(channel_assignments.c.seq == 3)
            .group_by(channel_assignments.c.author_id)
        ).all()
    assert dict((r[0], r[1]) for r in rollbacks) == {MANAGED_AUTHOR: BUCKETS, caller.name: BUCKETS}

    # Reads agree with the store: a descendant deep in the forest is REVOKED, inherited.
    deep = services.versions.get(caller, forest.bucket_names[FOREST % BUCKETS], f"tree-{FOREST}")
    assert deep.revocation_inherited_from is not None
    assert deep.revocation_inherited_from.version_fingerprint == forest.root_fingerprint

    # Restoring the root clears all 2,000 copies in one go too.
    services.revocation.update(
        caller, forest.root_bucket, forest.root_fingerprint, request(restore=True)
    )
    cleared = revocation_snapshot(services.store, forest.descendant_ids)
    assert all(v == (None, None, None, True) for v in cleared.values())


def _revoke_statements(services: Services, tenant: TenantFixture, size: int, tag: str) -> int:
    forest = seed_forest(
        services.store, tenant.project_id, descendants=size, buckets_count=10, prefix=tag
    )
    with count_statements(services.store.engine) as log:
        services.revocation.update(
            tenant.caller(), forest.root_bucket, forest.root_fingerprint, request(revoke_in="0s")
        )
    return log.count


def test_statement_count_does_not_grow_with_the_forest(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation's own statements are set-based; only the journal's grow, by one batch
    of its events per WRITE_AHEAD_EVENTS (tests/store/test_journal.py), held off here."""
    monkeypatch.setattr(journal, "WRITE_AHEAD_EVENTS", 10_000)
    small = _revoke_statements(services, tenant, 60, "small")
    large = _revoke_statements(services, tenant, 1_200, "large")
    assert small == large, (small, large)
    assert large < 40


def test_readers_see_all_or_nothing(services: Services, tenant: TenantFixture) -> None:
    """Readers polling during a big revocation never see part of it."""
    forest = seed_forest(
        services.store, tenant.project_id, descendants=FOREST, buckets_count=BUCKETS
    )
    tree = [forest.root_id, *forest.descendant_ids]
    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    reads = threading.Semaphore(0)
    # Reads that began after the revocation returned must all see it whole; reads
    # already under way when it committed may still see the state before it.
    revoked = threading.Event()
    reads_after = threading.Semaphore(0)

    def reader() -> None:
        try:
            while not stop.is_set():
                began_after = revoked.is_set()
                with services.store.read() as conn:
                    count = conn.execute(
                        select(func.count())
                        .select_from(versions)
                        .where(versions.c.bucket_id.in_(forest.bucket_ids))
                        .where(versions.c.revoke_at.is_not(None))
                    ).scalar_one()
                    # No reader may ever see a channel serving a revoked version.
                    stale = conn.execute(
                        select(func.count())
                        .select_from(channels)
                        .join(versions, versions.c.id == channels.c.version_id)
                        .where(channels.c.bucket_id.in_(forest.bucket_ids))
                        .where(versions.c.revoke_at.is_not(None))
                    ).scalar_one()
                seen.append((int(count), int(stale)))
                if began_after:
                    assert count == len(tree), count
                    reads_after.release()
                reads.release()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
            reads.release()
            reads_after.release()

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(3):
        assert reads.acquire(timeout=30)
    services.revocation.update(
        tenant.caller(), forest.root_bucket, forest.root_fingerprint, request(revoke_in="0s")
    )
    revoked.set()
    for _ in range(3):
        assert reads_after.acquire(timeout=30)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert not errors, errors
    assert {count for count, _ in seen} <= {0, len(tree)}
    assert {stale for _, stale in seen} == {0}
    assert (0, 0) in seen and (len(tree), 0) in seen


def test_scheduled_forest_revocation_rolls_back_when_due(
    services: Services, tenant: TenantFixture
) -> None:
    forest = seed_forest(services.store, tenant.project_id, descendants=500, buckets_count=20)
    at = utcnow() + timedelta(hours=1)
    services.revocation.update(
        tenant.caller(), forest.root_bucket, forest.root_fingerprint, request(revoke_at=at)
    )
    before = _channels(services, forest)
    assert all(v not in forest.base_ids for v in before.values())
    assert services.scheduler.apply_due(at - timedelta(seconds=1)) == 0
    with count_statements(services.store.engine) as log:
        assert services.scheduler.apply_due(at) == 1
    assert log.count < 40
    after = _channels(services, forest)
    for b, bucket_id in enumerate(forest.bucket_ids):
        assert after[(bucket_id, "latest")] == forest.base_ids[b]
        assert after[(bucket_id, USER_CHANNEL)] == forest.base_ids[b]
