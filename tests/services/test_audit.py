"""The audit service: who reads the log, retention, and streaming (cursors, lease, order,
at-least-once) with real file sinks."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from packyard.domain.audit import audit_query
from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow
from packyard.errors import ApiError
from packyard.services.audit import (
    AuditService,
    AuditSettings,
    AuditStreamer,
    AuditThread,
    stream_record,
)
from packyard.services.audit_sinks import FileSink, SinkError
from packyard.store.audit import AuditRepo
from packyard.store.engine import Store
from tests.support.audit import add, caller, set_time

SETTINGS = AuditSettings(backoff_base_s=0.0, backoff_max_s=0.0, lease_s=60.0)


def _project() -> str:
    return str(uuid.uuid4())


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_only_the_projects_admins_and_the_operator_read_it(store: Store) -> None:
    project = _project()
    add(store, project, caller(project, "alice"))
    add(store, None, Operator(), "Created project")
    service = AuditService(store)
    query, page = audit_query(utcnow()), PageRequest()
    admin = caller(project, "alice")
    [row] = service.list(admin, "org-1", project, query, page).items
    assert stream_record(row) | {} == {
        **row.record,
        "id": row.id,
        "seq": 1,
        "request_id": "",
        "source_address": "",
    }
    assert row.record["actor"]["principal_id"] == "sp-alice"
    for role in (Role.CONTRIBUTOR, Role.VIEWER):
        with pytest.raises(ApiError) as raised:
            service.list(caller(project, role=role), "org-1", project, query, page)
        assert raised.value.http_status == 403
    other = caller(_project())  # an admin of another project
    with pytest.raises(ApiError):
        service.list(other, "org-1", project, query, page)
    assert [r.scope for r in service.list(Operator(), "org-1", project, query, page).items] == [
        project
    ]
    outside = service.list_all(Operator(), query, page, scope="")
    assert [r.description for r in outside.items] == ["Created project"]


def test_retention_purges_old_entries(store: Store) -> None:
    project = _project()
    for _ in range(3):
        add(store, project, caller(project))
    now = utcnow()
    set_time(store, project, 1, now - timedelta(days=401))
    set_time(store, project, 2, now - timedelta(days=399))
    assert AuditService(store).purge(now) == 1
    assert AuditService(store, AuditSettings(retention_days=0)).purge(now) == 0  # for ever
    assert AuditService(store, AuditSettings(retention_days=1)).purge(now) == 1
    with store.read() as conn:
        assert [r.seq for r in AuditRepo(conn).after(project, 0, 10)] == [3]


def test_streams_every_scope_in_order_and_resumes(store: Store, tmp_path: Path) -> None:
    first, second = _project(), _project()
    for _ in range(3):
        add(store, first, caller(first))
        add(store, second, caller(second))
    add(store, None, Operator(), "Created project")
    path = tmp_path / "audit.jsonl"
    settings = AuditSettings(batch=2, lease_s=60.0)
    streamer = AuditStreamer(store, [FileSink(path)], settings, owner="a")
    assert streamer.step() == 7
    add(store, first, caller(first))
    assert streamer.step() == 1
    assert streamer.step() == 0
    streamer.close()
    add(store, second, caller(second))
    restarted = AuditStreamer(store, [FileSink(path)], settings, owner="a2")
    assert restarted.step() == 1  # resumes from its cursor: nothing sent twice
    records = _lines(path)
    for scope, count in ((first, 4), (second, 4), ("", 1)):
        assert [r["seq"] for r in records if r["project_id"] == scope] == list(range(1, count + 1))
    assert len({r["id"] for r in records}) == len(records) == 9


class _CrashAfterSend(AuditStreamer):
    """A server that dies after the sink took a batch, before the cursor moved."""

    crashes = 1

    def _advance(self, sink: str, scope: str, seq: int) -> None:
        if self.crashes:
            self.crashes -= 1
            raise RuntimeError("killed")
        super()._advance(sink, scope, seq)


def test_a_crash_between_send_and_cursor_resends_but_never_skips(
    store: Store, tmp_path: Path
) -> None:
    project = _project()
    for _ in range(5):
        add(store, project, caller(project))
    path = tmp_path / "audit.jsonl"
    settings = AuditSettings(batch=3, lease_s=60.0)
    crashing = _CrashAfterSend(store, [FileSink(path)], settings, owner="a")
    with pytest.raises(RuntimeError):
        crashing.step()
    assert [r["seq"] for r in _lines(path)] == [1, 2, 3]
    crashing.close()  # its lease is released (or lapses)
    AuditStreamer(store, [FileSink(path)], settings, owner="b").step()
    assert [r["seq"] for r in _lines(path)] == [1, 2, 3, 1, 2, 3, 4, 5]


def test_one_server_streams_and_a_lapsed_lease_is_taken_over(store: Store, tmp_path: Path) -> None:
    project = _project()
    add(store, project, caller(project))
    now = [datetime.now(UTC)]
    settings = AuditSettings(lease_s=30.0)
    a_path, b_path = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a = AuditStreamer(store, [_Named(a_path)], settings, owner="a", clock=lambda: now[0])
    b = AuditStreamer(store, [_Named(b_path)], settings, owner="b", clock=lambda: now[0])
    assert a.step() == 1
    add(store, project, caller(project))
    assert b.step() == 0  # a holds the lease
    assert a.step() == 1
    add(store, project, caller(project))
    now[0] += timedelta(seconds=31)  # a stopped renewing: its lease lapsed
    assert b.step() == 1
    assert not a.holds_lease()
    assert a.step() == 0
    # one cursor per sink and scope, shared: b went on where a stopped
    assert [r["seq"] for r in _lines(a_path)] == [1, 2]
    assert [r["seq"] for r in _lines(b_path)] == [3]


class _Named(FileSink):
    """A file sink whose cursor key is the same wherever it writes (one sink, two servers)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.name = "file:/shared/audit.jsonl"


class _Failing:
    name = "https://collector.example/down"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.calls += 1
        raise SinkError("collector.example answered HTTP 503")

    def close(self) -> None:
        pass


def test_a_failing_sink_retries_with_backoff_and_blocks_nothing(
    store: Store, tmp_path: Path
) -> None:
    project = _project()
    add(store, project, caller(project))
    failing = _Failing()
    path = tmp_path / "audit.jsonl"
    settings = AuditSettings(backoff_base_s=60.0, lease_s=60.0)
    streamer = AuditStreamer(store, [failing, FileSink(path)], settings, owner="a")
    assert streamer.step() == 1
    add(store, project, caller(project))  # writes go on while the sink is down
    assert streamer.step() == 1
    assert failing.calls == 1  # waiting for its retry
    assert [r["seq"] for r in _lines(path)] == [1, 2]
    with store.read() as conn:
        assert AuditRepo(conn).cursors(failing.name) == {}
    fast = AuditStreamer(store, [failing], SETTINGS, owner="a")
    fast.step()
    fast.step()
    assert failing.calls == 3  # no backoff configured: retried on every pass


def test_the_thread_purges_and_streams(store: Store, tmp_path: Path) -> None:
    project = _project()
    add(store, project, caller(project))
    add(store, project, caller(project))
    set_time(store, project, 1, utcnow() - timedelta(days=500))
    path = tmp_path / "audit.jsonl"
    settings = AuditSettings(purge_delay_s=0.0, poll_interval_s=0.05, lease_s=60.0)
    service = AuditService(store, settings)
    thread = AuditThread(service, AuditStreamer(store, [FileSink(path)], settings, owner="t"))
    thread.start()
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while len(_lines(path)) < 2 and datetime.now(UTC) < deadline:
            thread._stop.wait(0.05)
    finally:
        thread.stop()
    # streamed first? The purge ran first, but keeps what the sink had not streamed.
    assert [r["seq"] for r in _lines(path)] == [1, 2]
    with store.read() as conn:
        assert AuditRepo(conn).lease_holder("audit-stream", utcnow()) is None  # released
