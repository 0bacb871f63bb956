"""Shared fixtures: every storage-touching test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from packyard.services.container import Services
from packyard.store.engine import Store, sqlite_url
from packyard.store.migrate import upgrade
from tests.support.factories import Api, TenantFixture, make_tenant
from tests.support.postgres import PostgresCluster, PostgresUnavailable, start_cluster
from tests.support.server import running_server

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster | None]:
    try:
        cluster = start_cluster()
    except (PostgresUnavailable, OSError) as exc:
        if IN_CI:
            raise
        pytest.skip(f"PostgreSQL is not available here: {exc}")
        return
    try:
        template_url = cluster.create_database("packyard_template")
        store = Store(template_url)
        upgrade(store)
        store.dispose()
        yield cluster
    finally:
        cluster.stop()


def database_url(backend: str, tmp_path: Path, pg_cluster: PostgresCluster | None) -> str:
    if backend == "sqlite":
        return sqlite_url(str(tmp_path / "packyard.db"))
    assert pg_cluster is not None
    return pg_cluster.create_database(f"t_{uuid.uuid4().hex[:16]}", template="packyard_template")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    cluster = request.getfixturevalue("pg_cluster") if backend == "postgresql" else None
    return database_url(backend, tmp_path, cluster)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    upgrade(s)
    yield s
    s.dispose()


@pytest.fixture
def services(store: Store) -> Services:
    return Services.create(store)


@pytest.fixture
def tenant(services: Services) -> TenantFixture:
    return make_tenant(services)


@pytest.fixture
def base_url(services: Services) -> Iterator[str]:
    with running_server(services) as url:
        yield url


@pytest.fixture
def uncached_base_url(services: Services) -> Iterator[str]:
    """A server without the read-response cache: every request does its full work."""
    with running_server(services, response_cache=False) as url:
        yield url


@pytest.fixture
def api(base_url: str, tenant: TenantFixture) -> Iterator[Api]:
    client = Api(base_url, tenant)
    yield client
    client.close()


__all__ = ["sqlite_url"]
