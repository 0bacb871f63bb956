from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresCluster


@pytest.fixture
def empty_pg_url(pg_cluster: PostgresCluster | None) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database (no schema yet), dropped afterwards."""
    assert pg_cluster is not None
    name = f"robust_{uuid.uuid4().hex[:12]}"
    url = pg_cluster.create_database(name)
    yield url
    pg_cluster.drop_database(name)
