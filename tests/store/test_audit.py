"""The audit log's store: filtered, paged listings; stream reads; purge; cursors and lease."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from packyard.domain.audit import audit_query
from packyard.domain.events import AuditAction, AuditStatus
from packyard.domain.models import Operator
from packyard.domain.paging import PageRequest
from packyard.errors import ApiError
from packyard.store.audit import AuditRepo
from packyard.store.engine import Store
from packyard.store.journal import AuditRow
from tests.support.audit import add, add_failure, caller, set_time

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _project() -> str:
    return str(uuid.uuid4())


def _walk(store: Store, scope: str | None, size: int, **filters: str) -> list[list[AuditRow]]:
    query = audit_query(NOW, **filters)
    pages: list[list[AuditRow]] = []
    token: str | None = None
    while True:
        with store.read() as conn:
            page = AuditRepo(conn).page(scope, query, PageRequest(size=size, next_token=token))
        pages.append(page.items)
        if not page.next_token:
            return pages
        token = page.next_token


def _seqs(store: Store, scope: str, **filters: str) -> list[int]:
    return [r.seq for page in _walk(store, scope, 1000, **filters) for r in page]


def test_filters(store: Store) -> None:
    project = _project()
    alice, bob = caller(project, "alice"), caller(project, "bob")
    add(store, project, alice, "Created bucket", bucket="web")  # 1
    add(store, project, bob, "Revoked version", action=AuditAction.UPDATE, bucket="web")  # 2
    add(store, project, bob, "Deleted bucket", action=AuditAction.DELETE, bucket="db")  # 3
    add_failure(store, project, alice, "Created bucket", bucket="db")  # 4
    add(store, _project(), alice, "Created bucket", bucket="web")  # another project
    for seq, days in ((1, 10), (2, 5), (3, 2), (4, 1)):
        set_time(store, project, seq, NOW - timedelta(days=days))

    assert _seqs(store, project) == [4, 3, 2, 1]
    assert _seqs(store, project, actor="alice") == [4, 1]
    assert _seqs(store, project, actor="sp-bob") == [3, 2]
    assert _seqs(store, project, bucket="web") == [2, 1]
    assert _seqs(store, project, action="update") == [2]
    assert _seqs(store, project, action="revoked VERSION") == [2]
    assert _seqs(store, project, status="failed") == [4]
    assert _seqs(store, project, status="OK", bucket="db") == [3]
    assert _seqs(store, project, since="3d") == [4, 3]
    assert _seqs(store, project, since="6d", until=(NOW - timedelta(days=2)).isoformat()) == [2]
    with store.read() as conn:
        failed = AuditRepo(conn).after(project, 3, 10)[0]
    assert failed.status is AuditStatus.FAILED
    assert failed.record["error"] == "code = INVALID_ARGUMENT desc = the name is taken"


def test_bad_filters_are_refused() -> None:
    for filters in ({"since": "yesterday"}, {"status": "MAYBE"}, {"since": "2026-12-05"}):
        with pytest.raises(ApiError) as raised:
            audit_query(NOW, **filters)
        assert raised.value.http_status == 400
    with pytest.raises(ApiError):
        audit_query(NOW, since="1d", until="2d")  # until before since


def test_pages_are_newest_first_and_complete(store: Store) -> None:
    project = _project()
    who = caller(project)
    for _ in range(23):
        add(store, project, who)
    pages = _walk(store, project, 10)
    assert [len(p) for p in pages] == [10, 10, 3]
    assert [r.seq for p in pages for r in p] == list(range(23, 0, -1))
    # A token belongs to its listing: other filters refuse it.
    with store.read() as conn:
        token = AuditRepo(conn).page(project, audit_query(NOW), PageRequest(size=5)).next_token
        with pytest.raises(ApiError):
            AuditRepo(conn).page(
                project, audit_query(NOW, actor="x"), PageRequest(size=5, next_token=token)
            )


def test_every_scope_by_time_for_the_operator(store: Store) -> None:
    first, second = _project(), _project()
    add(store, first, caller(first))
    add(store, None, Operator(), "Created project")
    add(store, second, caller(second))
    set_time(store, "", 1, NOW - timedelta(hours=1))
    set_time(store, first, 1, NOW - timedelta(hours=3))
    set_time(store, second, 1, NOW - timedelta(hours=2))
    rows = [r for page in _walk(store, None, 2) for r in page]
    mine = [r.scope for r in rows if r.scope in ("", first, second)]
    assert mine == ["", second, first]
    assert _seqs(store, "") == [1]


def test_stream_reads_follow_seq(store: Store) -> None:
    project, other = _project(), _project()
    for _ in range(5):
        add(store, project, caller(project))
        add(store, other, caller(other))
    with store.read() as conn:
        repo = AuditRepo(conn)
        assert [r.seq for r in repo.after(project, 2, 2)] == [3, 4]
        assert [r.seq for r in repo.after(project, 5, 10)] == []
        heads = repo.heads()
    assert heads[project] == 5 and heads[other] == 5


def test_purge_in_batches_keeps_what_a_sink_has_not_streamed(store: Store) -> None:
    project = _project()
    for _ in range(6):
        add(store, project, caller(project))
    for seq in range(1, 6):
        set_time(store, project, seq, NOW - timedelta(days=500))
    cutoff = NOW - timedelta(days=400)
    with store.write(affects_reads=False) as conn:
        repo = AuditRepo(conn)
        repo.advance("file:/a", project, 2)
        repo.advance("file:/b", project, 4)
        # held for two sinks: only what both streamed (seq <= 2)
        assert repo.purge(cutoff, 100, ["file:/a", "file:/b"]) == 2
        # a sink that never streamed this scope holds everything
        assert repo.purge(cutoff, 100, ["stdout"]) == 0
        assert repo.purge(cutoff, 2, []) == 2
        assert repo.purge(cutoff, 2, []) == 1
        assert repo.purge(cutoff, 2, []) == 0
    assert _seqs(store, project) == [6]


def test_cursors_only_move_forward(store: Store) -> None:
    with store.write(affects_reads=False) as conn:
        repo = AuditRepo(conn)
        repo.advance("stdout", "p", 5)
        repo.advance("stdout", "p", 3)  # a late server cannot move it back
        repo.advance("stdout", "q", 1)
        repo.advance("file:/x", "p", 9)
    with store.read() as conn:
        assert AuditRepo(conn).cursors("stdout") == {"p": 5, "q": 1}


def test_lease_is_held_renewed_and_taken_over_when_it_lapses(store: Store) -> None:
    later = NOW + timedelta(seconds=60)
    with store.write(affects_reads=False) as conn:
        repo = AuditRepo(conn)
        assert repo.acquire_lease("audit-stream", "a", NOW, later)
        assert not repo.acquire_lease("audit-stream", "b", NOW, later)
        assert repo.acquire_lease("audit-stream", "a", NOW + timedelta(seconds=30), later)
        assert repo.lease_holder("audit-stream", NOW) == "a"
        # a's lease lapsed: b takes it, and a no longer holds it
        assert repo.acquire_lease("audit-stream", "b", later, later + timedelta(seconds=60))
        assert not repo.acquire_lease("audit-stream", "a", later, later + timedelta(seconds=60))
        repo.release_lease("audit-stream", "a")  # not a's: nothing happens
        assert repo.lease_holder("audit-stream", later) == "b"
        repo.release_lease("audit-stream", "b")
        assert repo.lease_holder("audit-stream", later) is None
