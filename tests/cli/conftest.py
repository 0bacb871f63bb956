from __future__ import annotations

from collections.abc import Iterator

import pytest

from packyard.client import PackerClient
from tests.support.cli import Cli
from tests.support.factories import Api, TenantFixture
from tests.support.hcp_env import sdk_client


@pytest.fixture
def hcp(api: Api, base_url: str, tenant: TenantFixture) -> Iterator[PackerClient]:
    with sdk_client(base_url, tenant) as client:
        yield client


@pytest.fixture
def cli(api: Api, base_url: str, tenant: TenantFixture) -> Cli:
    return Cli(base_url, tenant)
