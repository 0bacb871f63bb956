"""The revocation scheduler, driven deterministically with explicit ``now`` values."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from packyard.domain.enums import Role
from packyard.domain.models import MANAGED_AUTHOR, Caller
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow
from packyard.services.container import Services
from packyard.services.scheduler import RevocationScheduler, SchedulerThread
from packyard.store.engine import Store
from tests.support.factories import TenantFixture, unique
from tests.support.revocation import (
    Pushed,
    channel_target,
    history_length,
    push_version,
    request,
    revocation_snapshot,
)


@dataclass
class ChildBucket:
    """A bucket whose ``base`` version stands alone and whose ``built`` was built from a parent."""

    name: str
    id: str
    base: Pushed
    built: Pushed


class Setup:
    """A bucket with base → v2 and a user channel `prod` moved base → v2; `latest` on v2."""

    def __init__(self, services: Services, tenant: TenantFixture) -> None:
        self.services = services
        self.caller: Caller = tenant.caller(Role.ADMIN)
        self.bucket = unique("b")
        services.buckets.create(self.caller, self.bucket, None, None)
        self.base = push_version(services, self.caller, self.bucket)
        self.top = push_version(services, self.caller, self.bucket)
        self.bucket_id = services.buckets.get(self.caller, self.bucket).id
        services.channels.create(self.caller, self.bucket, "prod", self.base.fingerprint, False)
        services.channels.update(
            self.caller,
            self.bucket,
            "prod",
            fingerprint=self.top.fingerprint,
            restricted=None,
            update_mask="versionFingerprint",
        )
        self.prod_id = services.channels.get(self.caller, self.bucket, "prod").id

    def revoke(self, target: Pushed, at: datetime, *, disable_rollback: bool = False) -> None:
        self.services.revocation.update(
            self.caller,
            target.bucket,
            target.fingerprint,
            request(revoke_at=at, disable_rollback=disable_rollback),
        )

    def serving(self, channel: str = "prod", bucket_id: str | None = None) -> str | None:
        return channel_target(self.services.store, bucket_id or self.bucket_id, channel)

    def child_bucket(self) -> ChildBucket:
        """A new bucket with a base version, then a version built from ``top``."""
        name = unique("child")
        self.services.buckets.create(self.caller, name, None, None)
        base = push_version(self.services, self.caller, name)
        built = push_version(self.services, self.caller, name, parent_id=self.top.id)
        return ChildBucket(name, self.services.buckets.get(self.caller, name).id, base, built)


def test_due_rollbacks_apply_once_when_their_time_comes(
    services: Services, tenant: TenantFixture
) -> None:
    s = Setup(services, tenant)
    at = utcnow() + timedelta(hours=1)
    s.revoke(s.top, at)
    assert (s.serving(), s.serving("latest")) == (s.top.id, s.top.id)
    assert services.scheduler.has_due(at) is True
    assert services.scheduler.has_due(at - timedelta(seconds=1)) is False
    assert services.scheduler.apply_due(at - timedelta(minutes=30)) == 0
    assert s.serving() == s.top.id
    before = history_length(services.store, s.prod_id)

    assert services.scheduler.apply_due(at) == 1
    assert (s.serving(), s.serving("latest")) == (s.base.id, s.base.id)
    assert history_length(services.store, s.prod_id) == before + 1
    bucket = services.buckets.get(s.caller, s.bucket)
    assert bucket.latest_version_id == s.base.id
    history = services.channels.history(s.caller, s.bucket, "prod", PageRequest()).items
    assert history[0].assignment.author_id == MANAGED_AUTHOR

    # Exactly once: later runs find nothing, even if a channel is moved back by hand.
    assert services.scheduler.apply_due(at + timedelta(days=1)) == 0
    assert history_length(services.store, s.prod_id) == before + 1


def test_descendants_channels_roll_back_at_the_parents_time(
    services: Services, tenant: TenantFixture
) -> None:
    s = Setup(services, tenant)
    child = s.child_bucket()
    assert s.serving("latest", child.id) == child.built.id

    at = utcnow() + timedelta(minutes=5)
    s.revoke(s.top, at)
    snap = revocation_snapshot(services.store, [s.top.id, child.built.id])
    assert snap[child.built.id][:3] == (at, "INHERITED", s.top.id)
    assert snap[s.top.id][1:] == ("MANUAL", None, False)  # the origin carries the pending work
    assert services.scheduler.apply_due(at) == 1
    assert s.serving("latest", child.id) == child.base.id
    assert s.serving("prod") == s.base.id


def test_record_time_child_of_a_scheduled_parent_rolls_back_too(
    services: Services, tenant: TenantFixture
) -> None:
    s = Setup(services, tenant)
    at = utcnow() + timedelta(minutes=5)
    s.revoke(s.top, at)
    child = s.child_bucket()
    loaded = services.versions.get(s.caller, child.name, child.built.fingerprint)
    assert (
        loaded.revoke_at == services.versions.get(s.caller, s.bucket, s.top.fingerprint).revoke_at
    )
    assert s.serving("latest", child.id) == child.built.id  # scheduled: still assigned
    assert services.scheduler.apply_due(at + timedelta(seconds=1)) == 1
    assert s.serving("latest", child.id) == child.base.id


def test_nothing_to_do_without_rollback_or_after_restore(
    services: Services, tenant: TenantFixture
) -> None:
    s = Setup(services, tenant)
    at = utcnow() + timedelta(hours=1)
    s.revoke(s.top, at, disable_rollback=True)
    assert services.scheduler.has_due(at + timedelta(hours=1)) is False
    assert services.scheduler.apply_due(at + timedelta(hours=1)) == 0
    assert s.serving() == s.top.id

    other = Setup(services, tenant)
    other.revoke(other.top, at)
    services.revocation.update(
        other.caller, other.bucket, other.top.fingerprint, request(restore=True)
    )
    assert services.scheduler.apply_due(at + timedelta(hours=1)) == 0
    assert other.serving() == other.top.id


def test_rescheduling_replaces_the_pending_rollback(
    services: Services, tenant: TenantFixture
) -> None:
    s = Setup(services, tenant)
    first = utcnow() + timedelta(hours=1)
    s.revoke(s.top, first)
    s.revoke(s.top, first + timedelta(hours=1))
    assert services.scheduler.apply_due(first) == 0
    assert s.serving() == s.top.id
    s.revoke(s.top, first + timedelta(hours=2), disable_rollback=True)
    assert services.scheduler.apply_due(first + timedelta(hours=3)) == 0
    assert s.serving() == s.top.id


def test_catching_up_after_downtime_in_batches(services: Services, tenant: TenantFixture) -> None:
    setups = [Setup(services, tenant) for _ in range(5)]
    start = utcnow() + timedelta(minutes=1)
    for i, s in enumerate(setups):
        s.revoke(s.top, start + timedelta(minutes=i))
    small = RevocationScheduler(services.store, batch=2)
    assert small.apply_due(start + timedelta(minutes=2)) == 3
    assert [s.serving() for s in setups] == [s.base.id for s in setups[:3]] + [
        s.top.id for s in setups[3:]
    ]
    # "The server was down for a day": one call applies everything still due.
    assert small.apply_due(start + timedelta(days=1)) == 2
    assert all(s.serving() == s.base.id for s in setups)


def test_several_servers_apply_each_rollback_exactly_once(
    services: Services, tenant: TenantFixture, db_url: str
) -> None:
    setups = [Setup(services, tenant) for _ in range(12)]
    at = utcnow() + timedelta(minutes=1)
    for s in setups:
        s.revoke(s.top, at)
    lengths = {s.prod_id: history_length(services.store, s.prod_id) for s in setups}
    stores = [Store(db_url) for _ in range(4)]  # four "server processes" on one database
    results: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(stores))

    def run(store: Store) -> None:
        try:
            scheduler = RevocationScheduler(store, batch=3)
            barrier.wait(timeout=30)
            results.append(scheduler.apply_due(at))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(st,)) for st in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for st in stores:
        st.dispose()
    assert not errors, errors
    assert sum(results) == len(setups)
    for s in setups:
        assert s.serving() == s.base.id
        assert history_length(services.store, s.prod_id) == lengths[s.prod_id] + 1


def test_scheduler_thread_ticks_until_stopped(services: Services, tenant: TenantFixture) -> None:
    s = Setup(services, tenant)
    s.revoke(s.top, utcnow() + timedelta(milliseconds=300))
    runner = SchedulerThread(services.scheduler, interval=0.05)
    runner.start()
    try:
        deadline = utcnow() + timedelta(seconds=10)
        while s.serving() != s.base.id:
            assert utcnow() < deadline
            threading.Event().wait(0.05)
    finally:
        runner.stop()
    assert not runner.is_alive()
