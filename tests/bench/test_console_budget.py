"""Regression guard for the console: each main page costs the same number of SQL statements
however large the registry it shows (no query per bucket, version, build, artifact or row).

Two projects are seeded with the benchmark's own seeder, a small one and a larger one (more
buckets than a page shows, more versions, builds and artifacts, more buckets per family), and
one console user, admin of both, asks for every page of each through the real app (session
cookie, CSRF and all; the response cache off), on SQLite and on PostgreSQL. A page that is
not written yet is skipped with the reason; once it exists, this test counts it. Timings are
the benchmark's business (``bench/run``), not this test's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from bench.console import PAGE_NAMES, ConsolePage, console_pages, count_page, create_user, sign_in
from bench.seed import Shape, Targets, seed
from bench.sqlcount import counter_for

from packyard.domain.enums import Role
from packyard.domain.models import Operator
from packyard.services.container import Services
from packyard.store.engine import Store
from packyard.store.migrate import upgrade
from tests.conftest import BACKENDS, database_url
from tests.support.factories import make_tenant
from tests.support.server import running_server

SMALL = Shape(buckets=2, versions=3, builds=1, regions=1, family=2)
LARGER = Shape(buckets=30, versions=12, builds=3, regions=3, family=5)
# Far above every page's count today (3 to 12): only a gross regression trips it.
STATEMENTS_PER_PAGE = 30


@dataclass
class Served:
    store: Store
    base_url: str
    small: Targets
    larger: Targets
    email: str
    password: str


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """Both registries and the app serving them, once per backend for all the pages."""
    backend = str(request.param)
    cluster = request.getfixturevalue("pg_cluster") if backend == "postgresql" else None
    store = Store(database_url(backend, tmp_path_factory.mktemp("console-budget"), cluster))
    upgrade(store)
    services = Services.create(store)
    small_tenant, larger_tenant = make_tenant(services), make_tenant(services)
    small = seed(store, small_tenant.organization_id, small_tenant.project_id, SMALL).targets
    larger = seed(store, larger_tenant.organization_id, larger_tenant.project_id, LARGER).targets
    email, password = create_user(services, small.organization_id, small.project_id)
    services.users.create(
        Operator(), larger.organization_id, larger.project_id, email=email, role=Role.ADMIN
    )
    try:
        with running_server(services, response_cache=False) as base_url:
            yield Served(store, base_url, small, larger, email, password)
    finally:
        store.dispose()


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    """Signed in afresh for each page: a session's last use is written once it is a minute
    old, which would add a statement to whichever request came then."""
    with httpx.Client(base_url=served.base_url, timeout=60) as signed_in:
        sign_in(signed_in, served.email, served.password)
        yield signed_in


def _page(targets: Targets, name: str) -> ConsolePage:
    return next(p for p in console_pages(targets) if p.name == name)


def test_the_pages_are_the_benchmarks() -> None:
    dummy = Targets("o", "p", "b", "c", "fp", "img", "r", 1, [])
    assert tuple(p.name for p in console_pages(dummy)) == PAGE_NAMES


@pytest.mark.parametrize("name", PAGE_NAMES)
def test_statements_per_page_do_not_grow_with_the_registry(
    name: str, served: Served, client: httpx.Client
) -> None:
    counter = counter_for(served.store)
    small = count_page(client, counter, _page(served.small, name))
    if small.state == "missing":
        pytest.skip(f"the console has no {name} page yet (HTTP {small.status})")
    larger = count_page(client, counter, _page(served.larger, name))
    assert small.state == "ok", (name, "small registry", small)
    assert larger.state == "ok", (name, "larger registry", larger)
    assert small.statements is not None and larger.statements is not None
    assert larger.statements <= small.statements, (
        f"{name}: {larger.statements} statements on the larger registry, "
        f"{small.statements} on the small one (a query per row?)"
    )
    assert small.statements <= STATEMENTS_PER_PAGE, (name, small)
