"""Shared fixtures: every storage-touching test runs on SQLite and on PostgreSQL.

The suite runs in parallel (pytest-xdist, ``./dev test``): each worker process has its own
PostgreSQL cluster (a private directory and socket), its own session servers and browser, and
its own ``tmp_path`` tree; every server listens on a port the kernel picked. Tests never share
a database, a directory or a port, so any worker may run any test in any order.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

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
def db_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    cluster = request.getfixturevalue("pg_cluster") if backend == "postgresql" else None
    url = database_url(backend, tmp_path, cluster)
    yield url
    if cluster is not None:
        # Hundreds of 10 MB copies of the template otherwise fill the disk until the session
        # ends, and removing them then took minutes.
        cluster.drop_database(str(make_url(url).database))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database (one per worker), copied for each test's ``store``:
    migrating an empty database costs several times more than the copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "packyard.db"
    template = Store(sqlite_url(str(path)))
    upgrade(template)
    template.dispose()
    return path


@pytest.fixture
def store(db_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    database = make_url(db_url).database
    if db_url.startswith("sqlite") and database and not Path(database).exists():
        template: Path = request.getfixturevalue("sqlite_template")
        if not template.with_name(template.name + "-wal").exists():
            shutil.copyfile(template, database)
            os.chmod(database, 0o600)  # as Store creates it: the file holds the signing key
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


# Directories and modules whose every test takes seconds (a slow test elsewhere carries
# @pytest.mark.slow itself): fuzzing, crashes and races between real server processes, and the
# modules that start real `packyard serve` processes or run the CLI dozens of times per test.
SLOW_PATHS = (
    "fuzz",
    "robustness",
    "cli/test_backup.py",
    "cli/test_completion.py",
    "cli/test_help.py",
    "cli/test_serve.py",
    "cli/test_serve_hardening.py",
    "cli/test_serve_startup_errors.py",
)


def _on_postgresql(item: pytest.Item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "postgresql" in callspec.params.values()


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by these marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every console test ``browser``, every test under ``SLOW_PATHS`` ``slow`` and
    every PostgreSQL case ``postgresql`` (the fast subset leaves them out: see README,
    "Running the tests").

    Then orders the modules: those holding slow tests first, so that parallel workers share
    them out at the start instead of one finishing them alone at the end; the browser tests
    last, because Playwright's sync API keeps an event loop running in the main thread until
    the session ends, and a later test calling ``asyncio.run()`` would fail.
    """
    here = Path(__file__).parent
    web = here / "web"
    slow = [here / part for part in SLOW_PATHS]
    for item in items:
        if item.path.is_relative_to(web):
            item.add_marker(pytest.mark.browser)
        if any(item.path.is_relative_to(path) for path in slow):
            item.add_marker(pytest.mark.slow)
        if _on_postgresql(item):
            item.add_marker(pytest.mark.postgresql)
    browser_modules = {item.path for item in items if item.get_closest_marker("browser")}
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item: pytest.Item) -> int:
        return 2 if item.path in browser_modules else 0 if item.path in slow_modules else 1

    items.sort(key=rank)  # stable: each module keeps its order


__all__ = ["sqlite_url"]
