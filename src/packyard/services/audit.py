"""The audit log's read side: listing it, keeping it for its retention, streaming it.

Who reads it: a project's **admins** read the project's entries (HCP streams the audit log
to a destination only its admins configure; the entries name every principal's changes and
their source addresses, which viewers and contributors do not otherwise see). The operator
reads every scope, including ``""``: changes outside any project (organizations, projects,
principals). Requests without valid credentials are never audited (see
:mod:`packyard.services.journal`).

Retention: entries older than ``PACKYARD_AUDIT_RETENTION_DAYS`` (default 400, over a year as
HCP keeps them; ``0`` keeps them for ever) are deleted in batches by every server's audit
thread, once a minute after start and hourly after that. An entry a configured sink has not
streamed yet is kept until it has.

Streaming (``PACKYARD_AUDIT_SINKS``, :mod:`packyard.services.audit_sinks`): at least once, in
``seq`` order per scope, resuming after a restart. Each sink's position in each scope is a
row of ``audit_cursors``, moved only after the sink accepted a batch; a crash between the two
sends the batch again, never skips one. One server streams at a time: the holder of the
``leases`` row ``audit-stream``, renewed while it works and taken over by another server
when it lapses. A failing sink is retried with exponential backoff (and jitter) from the same
entry; the other sinks go on, and writes never wait for any sink: entries are read from the
database after they committed.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from packyard.config import env_number
from packyard.domain.access import may_manage_access
from packyard.domain.audit import AuditQuery
from packyard.domain.models import Caller, Operator
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow
from packyard.errors import permission_denied
from packyard.ids import new_id
from packyard.services.audit_sinks import Sink, SinkError, parse_sinks
from packyard.services.background import LoopThread, running
from packyard.startup import StartupError
from packyard.store.audit import AuditRepo
from packyard.store.engine import Store
from packyard.store.journal import AuditRow

log = logging.getLogger(__name__)

SINKS_ENV = "PACKYARD_AUDIT_SINKS"
RETENTION_ENV = "PACKYARD_AUDIT_RETENTION_DAYS"
ALLOW_PRIVATE_ENV = "PACKYARD_AUDIT_ALLOW_PRIVATE"
HTTP_TOKEN_ENV = "PACKYARD_AUDIT_HTTP_TOKEN"  # noqa: S105 -- the variable's name
LEASE = "audit-stream"
THREAD_NAME = "packyard-audit"
DEFAULT_RETENTION_DAYS = 400.0
PURGE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class AuditSettings:
    retention_days: float = DEFAULT_RETENTION_DAYS
    sinks: str = ""  # PACKYARD_AUDIT_SINKS
    allow_private: bool = False
    http_token: str | None = field(default=None, repr=False)
    timeout_s: float = 10.0
    batch: int = 100
    poll_interval_s: float = 2.0
    lease_s: float = 60.0
    backoff_base_s: float = 1.0
    backoff_max_s: float = 300.0
    purge_delay_s: float = 60.0
    purge_interval_s: float = 3600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuditSettings:
        env = os.environ if environ is None else environ
        settings = cls(
            retention_days=env_number(RETENTION_ENV, DEFAULT_RETENTION_DAYS, minimum=0),
            sinks=env.get(SINKS_ENV, ""),
            allow_private=env.get(ALLOW_PRIVATE_ENV, "").strip().lower() in ("1", "true", "yes"),
            http_token=env.get(HTTP_TOKEN_ENV) or None,
        )
        settings.build_sinks()  # a sink that cannot be used stops the start, in one line
        return settings

    def build_sinks(self) -> list[Sink]:
        try:
            return parse_sinks(
                self.sinks,
                allow_private=self.allow_private,
                http_token=self.http_token,
                timeout_s=self.timeout_s,
            )
        except ValueError as exc:
            raise StartupError(f"{SINKS_ENV}: {exc}") from None


def stream_record(row: AuditRow) -> dict[str, Any]:
    """An entry as it is listed and streamed: HCP's flat record plus Packyard's fields."""
    return {
        **row.record,
        "id": row.id,
        "seq": row.seq,
        "request_id": row.request_id,
        "source_address": row.source_address,
    }


class AuditService:
    def __init__(self, store: Store, settings: AuditSettings | None = None) -> None:
        self.store = store
        self.settings = settings or AuditSettings()

    def list(
        self,
        caller: Caller | Operator,
        organization_id: str,
        project_id: str,
        query: AuditQuery,
        page: PageRequest,
    ) -> Page[AuditRow]:
        """The project's entries matching ``query``, newest first (its admins)."""
        if not may_manage_access(caller, organization_id, project_id):
            raise permission_denied("Only the project's admins read its audit log.")
        with self.store.read() as conn:
            return AuditRepo(conn).page(project_id, query, page)

    def list_all(
        self, operator: Operator, query: AuditQuery, page: PageRequest, scope: str | None = None
    ) -> Page[AuditRow]:
        """Entries of every scope (or of ``scope``; ``""``: outside any project), for the
        operator."""
        assert isinstance(operator, Operator)
        with self.store.read() as conn:
            return AuditRepo(conn).page(scope, query, page)

    def purge(self, now: datetime | None = None, held_for: Sequence[str] = ()) -> int:
        """Delete the entries past the retention, in batches; how many."""
        if self.settings.retention_days <= 0:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=self.settings.retention_days)
        total = 0
        while True:
            with self.store.write(affects_reads=False) as conn:
                deleted = AuditRepo(conn).purge(cutoff, PURGE_BATCH, held_for)
            total += deleted
            if deleted < PURGE_BATCH:
                return total


# --- streaming ---------------------------------------------------------------------------


@dataclass
class _SinkState:
    sink: Sink
    failures: int = 0
    retry_at: float = 0.0  # time.monotonic()


class AuditStreamer:
    """Streams new entries to ``sinks`` while this process holds the lease."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[Sink],
        settings: AuditSettings | None = None,
        *,
        owner: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.settings = settings or AuditSettings()
        self.owner = owner or f"{socket.gethostname()[:32]}:{os.getpid()}:{new_id()[-8:]}"
        self.clock = clock
        self._sinks = [_SinkState(s) for s in sinks]
        self._lease_until: datetime | None = None
        self._stop = threading.Event()

    @property
    def sink_names(self) -> list[str]:
        return [s.sink.name for s in self._sinks]

    def holds_lease(self) -> bool:
        """Take or renew the lease when half of it has run; whether this process holds it."""
        now = self.clock()
        if self._lease_until is not None and now < self._lease_until - timedelta(
            seconds=self.settings.lease_s / 2
        ):
            return True
        until = now + timedelta(seconds=self.settings.lease_s)
        with self.store.write(affects_reads=False) as conn:
            held = AuditRepo(conn).acquire_lease(LEASE, self.owner, now, until)
        if held and self._lease_until is None:
            log.info("audit log: streaming to %s", ", ".join(self.sink_names))
        self._lease_until = until if held else None
        return held

    def release(self) -> None:
        if self._lease_until is None:
            return
        self._lease_until = None
        try:
            with self.store.write(affects_reads=False) as conn:
                AuditRepo(conn).release_lease(LEASE, self.owner)
        except Exception:  # the lease lapses on its own
            log.warning("audit log: could not release the streaming lease", exc_info=True)

    def step(self) -> int:
        """One pass: every sink that is not waiting for a retry gets what it misses; returns
        how many entries were sent (0 without the lease)."""
        if not self._sinks or not self.holds_lease():
            return 0
        with self.store.read() as conn:
            heads = AuditRepo(conn).heads()
        sent = 0
        for state in self._sinks:
            if self._stop.is_set():
                break
            if time.monotonic() < state.retry_at:
                continue
            try:
                sent += self._drain(state.sink, heads)
            except SinkError as exc:
                state.failures += 1
                delay = min(
                    self.settings.backoff_max_s,
                    self.settings.backoff_base_s * 2 ** min(state.failures - 1, 20),
                )
                delay *= random.uniform(0.5, 1.0)
                state.retry_at = time.monotonic() + delay
                log.warning(
                    "audit log: sink %s failed (%s); retrying in %.0f s",
                    state.sink.name,
                    exc,
                    delay,
                )
            else:
                if state.failures:
                    log.info("audit log: sink %s recovered", state.sink.name)
                state.failures = 0
        return sent

    def _drain(self, sink: Sink, heads: Mapping[str, int]) -> int:
        with self.store.read() as conn:
            cursors = AuditRepo(conn).cursors(sink.name)
        sent = 0
        for scope in sorted(heads):
            position = cursors.get(scope, 0)
            while position < heads[scope] and not self._stop.is_set():
                if not self.holds_lease():
                    return sent
                with self.store.read() as conn:
                    rows = AuditRepo(conn).after(scope, position, self.settings.batch)
                if not rows:
                    break
                sink.send([stream_record(r) for r in rows])
                position = rows[-1].seq
                self._advance(sink.name, scope, position)
                sent += len(rows)
        return sent

    def _advance(self, sink: str, scope: str, seq: int) -> None:
        with self.store.write(affects_reads=False) as conn:
            AuditRepo(conn).advance(sink, scope, seq)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self.release()
        for state in self._sinks:
            state.sink.close()


class AuditThread(LoopThread):
    """Streams (when sinks are configured) and purges past the retention, until stopped."""

    def __init__(self, service: AuditService, streamer: AuditStreamer) -> None:
        super().__init__(
            THREAD_NAME,
            self._pass,
            interval=service.settings.poll_interval_s,
            wake=streamer.stop,
        )
        self.service = service
        self.streamer = streamer
        self._purge_at = time.monotonic() + service.settings.purge_delay_s

    def _pass(self) -> None:
        if time.monotonic() >= self._purge_at:
            self._purge_at = time.monotonic() + self.service.settings.purge_interval_s
            purged = self.service.purge(held_for=self.streamer.sink_names)
            if purged:
                log.info("audit log: deleted %d entries past the retention", purged)
        self.streamer.step()

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.streamer.close()


def audit_running(service: AuditService) -> AbstractContextManager[LoopThread]:
    """The audit thread of this server for the duration of the block."""
    streamer = AuditStreamer(service.store, service.settings.build_sinks(), service.settings)
    return running(AuditThread(service, streamer))


__all__ = [
    "AuditService",
    "AuditSettings",
    "AuditStreamer",
    "AuditThread",
    "audit_running",
    "stream_record",
]
