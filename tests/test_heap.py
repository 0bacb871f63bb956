"""Freed memory goes back to the system after a large write transaction (packyard.heap),
and only then."""

from __future__ import annotations

import platform

import pytest

from packyard import heap
from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store import engine
from tests.support.factories import TenantFixture
from tests.support.revocation import new_buckets, push_version, request


def test_glibc_heaps_are_trimmed() -> None:
    assert heap.release_freed() is (platform.libc_ver()[0] == "glibc")


def test_a_transaction_recording_many_events_releases_what_it_freed(
    services: Services, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    released: list[bool] = []

    def release() -> bool:
        released.append(True)
        return True

    monkeypatch.setattr(heap, "release_freed", release)
    monkeypatch.setattr(engine, "LARGE_WRITE_EVENTS", 3)
    caller = tenant.caller(Role.ADMIN)
    base, child = new_buckets(services, caller, "base", "child")
    root = push_version(services, caller, base)
    push_version(services, caller, child, parent_id=root.id)
    assert released == []  # pushes record an event or two per transaction
    services.revocation.revoke(caller, base, root.fingerprint, request(revoke_in="1h"))
    assert released == []  # two events: the root's and its descendant's
    push_version(services, caller, child, parent_id=root.id)
    services.revocation.revoke(caller, base, root.fingerprint, request(revoke_in="2h"))
    assert released == [True]  # three


def test_a_large_write_transaction_closes_its_postgresql_connection(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """libpq keeps the buffers a transaction grew until its connection closes; SQLite
    connections keep nothing of the kind and stay."""
    monkeypatch.setattr(engine, "flush_journal", lambda conn, keys: engine.LARGE_WRITE_EVENTS)
    with services.store.write() as conn:
        driver = conn.connection.driver_connection
    assert getattr(driver, "closed", False) is not services.store.is_sqlite
    with services.store.write() as conn:  # PostgreSQL: the next write opens another
        assert (conn.connection.driver_connection is driver) is services.store.is_sqlite
