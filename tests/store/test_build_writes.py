"""A build's insert or update carries its version's update (``BuildRepo.insert`` and
``update`` with ``version=``): one statement on PostgreSQL, two on SQLite, and on both
exactly the named columns of the build and of its version change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, select

from packyard.domain.enums import BuildStatus, Role, TemplateType
from packyard.domain.models import Build
from packyard.ids import new_id
from packyard.services.container import Services
from packyard.store.schema import builds, versions
from packyard.store.versions import BuildRepo
from tests.support.factories import TenantFixture, unique

LATER = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)


def _row(conn: Connection, table: Any, row_id: str) -> dict[str, Any]:
    return dict(conn.execute(select(table).where(table.c.id == row_id)).one()._mapping)


def _naive(at: datetime) -> datetime:
    return at.replace(tzinfo=None)


def _build(version_id: str) -> Build:
    at = LATER - timedelta(days=1)
    return Build(
        id=new_id(),
        version_id=version_id,
        component_type="amazon-ebs.one",
        packer_run_uuid="run-1",
        platform="aws",
        status=BuildStatus.RUNNING,
        source_external_identifier="",
        labels={"os": "linux"},
        metadata=None,
        parent_version_id=None,
        parent_channel_id=None,
        created_at=at,
        updated_at=at,
    )


@pytest.fixture
def build(services: Services, tenant: TenantFixture) -> Build:
    """A build (not stored yet) of a new version."""
    admin = tenant.caller(Role.ADMIN)
    bucket, fingerprint = unique("b"), unique("fp")
    services.buckets.create(admin, bucket, None, None)
    return _build(services.versions.create(admin, bucket, fingerprint, TemplateType.HCL2).id)


@contextmanager
def _counting(services: Services) -> Iterator[list[int]]:
    """The statements run inside the block, in the list yielded (once it ends)."""
    counter = services.store.enable_statement_counter()
    before = counter.snapshot()[0]
    used: list[int] = []
    yield used
    used.append(counter.snapshot()[0] - before)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {k for k in after if after[k] != before[k]}


def test_an_inserted_build_moves_only_its_version_s_named_columns(
    services: Services, tenant: TenantFixture, build: Build, backend: str
) -> None:
    with services.store.write(tenant.project_id) as conn:
        before = _row(conn, versions, build.version_id)
        with _counting(services) as used:
            BuildRepo(conn).insert(build, version={"updated_at": LATER})
    with services.store.read() as conn:
        after = _row(conn, versions, build.version_id)
        stored = _row(conn, builds, build.id)
    assert used == [1 if backend == "postgresql" else 2]
    assert _changed(before, after) == {"updated_at"}
    assert _naive(after["updated_at"]) == _naive(LATER)
    assert (stored["version_id"], stored["labels"]) == (build.version_id, {"os": "linux"})


def test_an_updated_build_moves_only_the_named_columns_of_both_rows(
    services: Services, tenant: TenantFixture, build: Build, backend: str
) -> None:
    with services.store.write(tenant.project_id) as conn:
        BuildRepo(conn).insert(build)
    with services.store.write(tenant.project_id) as conn:
        before = (_row(conn, versions, build.version_id), _row(conn, builds, build.id))
        with _counting(services) as used:
            BuildRepo(conn).update(
                build,
                {"status": BuildStatus.DONE.value, "updated_at": LATER},
                version={"number": 7, "updated_at": LATER},
            )
    with services.store.read() as conn:
        after = (_row(conn, versions, build.version_id), _row(conn, builds, build.id))
    assert used == [1 if backend == "postgresql" else 2]
    assert [_changed(b, a) for b, a in zip(before, after, strict=True)] == [
        {"number", "updated_at"},
        {"status", "updated_at"},
    ]
    assert (after[0]["number"], _naive(after[0]["updated_at"])) == (7, _naive(LATER))
    assert after[1]["status"] == BuildStatus.DONE.value


def test_without_a_version_update_a_build_write_is_one_statement(
    services: Services, tenant: TenantFixture, build: Build
) -> None:
    with services.store.write(tenant.project_id) as conn, _counting(services) as used:
        BuildRepo(conn).insert(build)
        BuildRepo(conn).update(build, {"platform": "gcp"})
    assert used == [2]
