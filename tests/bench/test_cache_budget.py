"""Regression guard for cached reads: a repeated consumer read costs one probe, no SQL work.

The same hot requests as the statement budgets (`test_query_budget.py`), through a server
with the response cache on: once a response is stored, asking again runs no statement
through SQLAlchemy and exactly one generation probe.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from bench.seed import Shape, Targets, seed
from bench.sqlcount import count_request, counter_for, read_endpoints

from packyard.api.app import create_app
from packyard.api.cache import ReadCache
from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.store.engine import Store
from tests.support.factories import TenantFixture
from tests.support.server import serving_app

SHAPE = Shape(buckets=3, versions=4, builds=3, regions=5, family=2)


@pytest.fixture
def targets(store: Store, tenant: TenantFixture) -> Targets:
    return seed(store, tenant.organization_id, tenant.project_id, SHAPE).targets


@pytest.fixture
def cached_server(services: Services) -> Iterator[tuple[str, ReadCache]]:
    app = create_app(services, background_jobs=False)
    with serving_app(app) as url:
        yield url, app.state.read_cache


def test_a_repeated_read_costs_one_probe(
    targets: Targets,
    cached_server: tuple[str, ReadCache],
    tenant: TenantFixture,
    store: Store,
) -> None:
    url, cache = cached_server
    counter = counter_for(store)
    headers = {"Authorization": f"Bearer {tenant.identities[Role.ADMIN].token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        for endpoint in read_endpoints(targets):
            for _ in range(3):  # role looked up, seen, then stored
                client.request(endpoint.method, endpoint.path, json=endpoint.json)
            probes, hits = cache.probes, cache.responses.hits
            got = count_request(client, counter, endpoint, repeat=3)
            assert got.status == 200, (endpoint.name, got)
            assert got.statements == 0, (endpoint.name, got)
            assert cache.probes - probes == 4, endpoint.name  # count_request's warm-up + 3
            assert cache.responses.hits - hits == 4, endpoint.name
