"""Regression guard for the benchmark's hot paths: SQL statements per request, not timings.

A small registry is seeded with the benchmark's own seeder, then each hot
request is counted through the real HTTP server. The budgets sit well above
today's counts (see bench/results/), so only gross regressions fail: an extra
query per artifact or per bucket, a lost join, a second transaction per call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from bench.seed import Shape, Targets, seed
from bench.sqlcount import Endpoint, count_push, count_request, counter_for, read_endpoints

from packyard.domain.enums import Role
from packyard.store.engine import StatementCounter, Store
from tests.support.factories import TenantFixture

# Statements per request (BEGIN and COMMIT are not statements here).
READ_BUDGET = {"GetChannel": 12, "GetVersion": 11, "GetBucket": 12, "ListBuckets": 12}
READ_TRANSACTIONS = 3  # authorization + the service's read, with one to spare
PUSH_BUDGET = 180  # the whole two-build Packer push sequence (13 calls)
PUSH_TRANSACTIONS = 30

SMALL = Shape(buckets=4, versions=8, builds=3, regions=5, family=2)
TINY = Shape(buckets=2, versions=8, builds=1, regions=1, family=2)


@pytest.fixture
def base_url(uncached_base_url: str) -> str:
    """Counts measure the full work of each request, so the response cache is off."""
    return uncached_base_url


@pytest.fixture
def seeded(store: Store, tenant: TenantFixture) -> tuple[Targets, Targets]:
    big = seed(store, tenant.organization_id, tenant.project_id, SMALL, bucket_prefix="big")
    tiny = seed(store, tenant.organization_id, tenant.project_id, TINY, bucket_prefix="tiny")
    return big.targets, tiny.targets


@pytest.fixture
def client(base_url: str, tenant: TenantFixture) -> Iterator[httpx.Client]:
    token = tenant.identities[Role.ADMIN].token
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=60) as c:
        yield c


@pytest.fixture
def counter(store: Store) -> StatementCounter:
    return counter_for(store)


def test_read_path_budgets(
    seeded: tuple[Targets, Targets], client: httpx.Client, counter: StatementCounter
) -> None:
    big, tiny = seeded
    counts = {}
    for targets in (big, tiny):
        for endpoint in read_endpoints(targets):
            if endpoint.name not in READ_BUDGET:
                continue
            got = count_request(client, counter, endpoint, repeat=2)
            assert got.status == 200, (endpoint, got)
            counts[targets.bucket, endpoint.name] = got
            assert got.statements <= READ_BUDGET[endpoint.name], (endpoint.name, got)
            assert got.transactions <= READ_TRANSACTIONS, (endpoint.name, got)
    # 3 builds x 5 artifacts cost no more statements than 1 x 1: no per-row queries.
    for name in READ_BUDGET:
        assert counts[big.bucket, name].statements == counts[tiny.bucket, name].statements, name


def test_list_buckets_page_size_does_not_change_the_count(
    seeded: tuple[Targets, Targets], client: httpx.Client, counter: StatementCounter
) -> None:
    big, _ = seeded
    listing = next(e for e in read_endpoints(big) if e.name == "ListBuckets").path.split("?")[0]
    pages = {}
    for size in (1, 6):  # one bucket, then all six (each with its latest version and builds)
        page = Endpoint("ListBuckets", "GET", f"{listing}?pagination.page_size={size}")
        pages[size] = count_request(client, counter, page, repeat=1)
        assert pages[size].status == 200
    assert pages[1].statements == pages[6].statements, pages


def test_push_sequence_budget(
    seeded: tuple[Targets, Targets], base_url: str, tenant: TenantFixture, store: Store
) -> None:
    big, _ = seeded
    counter = counter_for(store)
    token = tenant.identities[Role.ADMIN].token
    result = count_push(
        base_url, token, counter, big, big.push_buckets[1], f"budget-{time.time_ns()}"
    )
    assert result.complete, result.failure
    assert result.calls == 13
    assert result.statements <= PUSH_BUDGET, result.per_call
    assert result.transactions <= PUSH_TRANSACTIONS, result
