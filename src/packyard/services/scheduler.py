"""The revocation scheduler: channel rollbacks of scheduled revocations, when they fall due.

Statuses need no job (they are derived from ``revoke_at`` at read time), but
moving channels off a version whose scheduled revocation has come must be done
by someone. Each server runs :class:`SchedulerThread`, which polls every
second or so; :meth:`RevocationScheduler.apply_due` does the work and can be
called directly with any ``now`` (tests, catch-up after downtime).

Exactly once, even with several servers on one PostgreSQL: due origins are
claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` and marked applied in the
same transaction as their rollback. On SQLite, write transactions are serial.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Select, select

from packyard import metrics
from packyard.domain.events import SYSTEM, AuditAction
from packyard.domain.models import MANAGED_AUTHOR, Version
from packyard.domain.rules import utcnow
from packyard.services import recording
from packyard.services.background import LoopThread, running
from packyard.services.journal import record
from packyard.services.lifecycle import roll_back_channels
from packyard.store.engine import Store
from packyard.store.revocation import ChannelMove, RevocationRepo
from packyard.store.schema import buckets, versions
from packyard.store.versions import VersionRepo

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 1.0
BATCH = 200


class RevocationScheduler:
    def __init__(self, store: Store, *, batch: int = BATCH) -> None:
        self.store = store
        self.batch = batch

    def has_due(self, now: datetime | None = None) -> bool:
        """A cheap read: is any scheduled rollback due at ``now``?"""
        with self.store.read() as conn:
            return RevocationRepo(conn).has_due(now or utcnow())

    def apply_due(self, now: datetime | None = None) -> int:
        """Roll back the channels of every revocation due at ``now``; returns how many.

        Works in batches, one transaction each, until nothing due is left
        unclaimed, so a server that was down catches up in one call.
        """
        at = now or utcnow()
        total = 0
        lags: list[float] = []
        while True:
            with self.store.write() as conn:
                repo = RevocationRepo(conn)
                due = repo.lock_due(at, self.batch)
                if not due:
                    break
                # How late each rollback runs, for packyard_scheduled_revocation_lag_seconds.
                lags += [
                    (at - _aware(revoke_at)).total_seconds()
                    for revoke_at in conn.execute(
                        select(versions.c.revoke_at).where(versions.c.id.in_(due))
                    ).scalars()
                    if revoke_at is not None
                ]
                origins = select(versions.c.id).where(versions.c.id.in_(due))
                moves = roll_back_channels(
                    conn, RevocationRepo.revoked_by(origins), now=at, author=MANAGED_AUTHOR
                )
                repo.mark_applied(due)
                _record(conn, origins, moves, at)
            total += len(due)
            if len(due) < self.batch:
                break
        if total:
            metrics.event("scheduled_rollbacks_applied", total)
        metrics.metrics().scheduler_pass(lags)
        return total

    def tick(self) -> int:
        now = utcnow()
        if self.has_due(now):
            return self.apply_due(now)
        metrics.metrics().scheduler_pass(())
        return 0


def _record(
    conn: Connection, origins: Select[Any], moves: Sequence[ChannelMove], now: datetime
) -> None:
    """A ``revoke`` event for each version whose revocation took effect (the origins and
    the versions inheriting from them) and an ``assign`` event per channel rolled back,
    audited once per origin, by the registry itself."""
    rows = conn.execute(
        select(versions.c.id, buckets.c.project_id)
        .join(buckets, buckets.c.id == versions.c.bucket_id)
        .where(versions.c.id.in_(origins))
    )
    projects: dict[str, str] = {r.id: r.project_id for r in rows}
    found = recording.loaded(conn, projects)
    marks = VersionRepo(conn).inherited_copy_marks(origins)
    origin_of = {vid: mark.origin_id for vid, mark in marks.items()}
    origin_of.update({vid: vid for vid in projects})

    def record_origin(origin_id: str, copies: Iterable[tuple[Version, str]]) -> None:
        mine = [m for m in moves if origin_of.get(m.previous_version_id or "") == origin_id]
        events = recording.revocation_events(
            conn, found[origin_id], copies, now, skip_descendants=False, moves=mine
        )
        change = recording.version_change(
            AuditAction.UPDATE,
            "Revoked version",
            found[origin_id],
            now,
            events,
            scheduled=True,
            channels_rolled_back=len(mine),
        )
        record(conn, projects[origin_id], SYSTEM, change)

    # The copies come by origin, each origin's read as its events are recorded.
    recorded = set()
    for origin_id, copies in groupby(recording.streamed_copies(conn, origins), itemgetter(1)):
        record_origin(origin_id, copies)
        recorded.add(origin_id)
    for origin_id in sorted(projects.keys() - recorded):  # no descendant inherited these
        record_origin(origin_id, ())


def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they are stored in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


THREAD_NAME = "packyard-revocation-scheduler"


class SchedulerThread(LoopThread):
    """Runs :meth:`RevocationScheduler.tick` every ``interval`` seconds until stopped."""

    def __init__(self, scheduler: RevocationScheduler, interval: float = POLL_INTERVAL_S) -> None:
        super().__init__(THREAD_NAME, self._tick, interval=interval)
        self.scheduler = scheduler

    def _tick(self) -> None:
        applied = self.scheduler.tick()
        if applied:
            log.info("applied %d scheduled revocation rollback(s)", applied)


def scheduler_running(
    scheduler: RevocationScheduler, interval: float = POLL_INTERVAL_S
) -> AbstractContextManager[LoopThread]:
    """Run ``scheduler`` in a background thread for the duration of the block."""
    return running(SchedulerThread(scheduler, interval))


__all__ = ["RevocationScheduler", "SchedulerThread", "scheduler_running"]
