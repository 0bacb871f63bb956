"""Concurrent Packer-style pushes and channel updates keep every invariant.

One in-process server per backend, then two real `packyard serve` processes sharing one
PostgreSQL database. Every scenario ends with `packyard check`.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support.factories import TenantFixture
from tests.support.robust import Pusher, admin_token, check, run_check_cli, run_parallel
from tests.support.serve_process import plain_http_server

COMPONENTS = ("amazon-ebs.a", "googlecompute.b")
FINGERPRINTS = [f"race-fp-{i}" for i in range(4)]
RUNS_PER_FINGERPRINT = 3  # the same fingerprint pushed by three `packer build`s at once
CHANNEL_WRITERS = 3
UPDATES_PER_WRITER = 5


def race_pushes(pushers: list[Pusher], bucket: str = "race") -> None:
    """Every fingerprint pushed by several runs at once, all runs released together."""
    jobs = [
        partial(pushers[i % len(pushers)].push, bucket, fingerprint, COMPONENTS)
        for i, fingerprint in enumerate(FINGERPRINTS * RUNS_PER_FINGERPRINT)
    ]
    run_parallel(jobs)


def assert_pushed(reader: Pusher, bucket: str = "race") -> None:
    buckets = reader.call("GET", "/buckets")["buckets"]
    assert [b["name"] for b in buckets].count(bucket) == 1
    versions = reader.call("GET", f"/buckets/{bucket}/versions")["versions"]
    assert sorted(v["fingerprint"] for v in versions) == sorted(FINGERPRINTS)
    assert sorted(v["name"] for v in versions) == [f"v{n}" for n in range(1, len(FINGERPRINTS) + 1)]
    for v in versions:
        assert v["status"] == "VERSION_ACTIVE", v
        builds = reader.call("GET", f"/buckets/{bucket}/versions/{v['fingerprint']}/builds")
        assert sorted(b["component_type"] for b in builds["builds"]) == sorted(COMPONENTS)
        assert {b["status"] for b in builds["builds"]} == {"BUILD_DONE"}
    got = reader.call("GET", f"/buckets/{bucket}")["bucket"]
    assert got["version_count"] == str(len(FINGERPRINTS))
    assert got["latest_version"]["name"] == f"v{len(FINGERPRINTS)}"


def race_same_build(pushers: list[Pusher], bucket: str, fingerprint: str) -> None:
    """The same build created by eight requests at once: exactly one wins."""
    pushers[0].call("PUT", "/buckets", {"name": bucket}, allow={(409, 6)})
    body = {"fingerprint": fingerprint, "template_type": "HCL2"}
    pushers[0].call("POST", f"/buckets/{bucket}/versions", body)
    path = f"/buckets/{bucket}/versions/{fingerprint}/builds"
    results: list[Any] = []

    def create(pusher: Pusher) -> None:
        body = {"component_type": "twice.a", "status": "BUILD_UNSET", "artifacts": None}
        results.append(pusher.call("POST", path, body, allow={(409, 6)}))

    run_parallel([partial(create, pushers[i % len(pushers)]) for i in range(8)])
    assert len([r for r in results if r is not None]) == 1
    assert len(pushers[0].call("GET", path)["builds"]) == 1


def race_channel_updates(pushers: list[Pusher], bucket: str = "race-channels") -> None:
    """Concurrent assignments to one channel: each lands once, in the history, none lost."""
    total = CHANNEL_WRITERS * UPDATES_PER_WRITER
    fingerprints = [f"chan-fp-{i}" for i in range(total)]
    for fingerprint in fingerprints:  # set-up, one after the other
        pushers[0].push(bucket, fingerprint, ("null.a",))
    pushers[0].call("POST", f"/buckets/{bucket}/channels", {"name": "prod"})

    def writer(pusher: Pusher, mine: list[str]) -> None:
        for fingerprint in mine:
            body = {"version_fingerprint": fingerprint, "update_mask": "versionFingerprint"}
            got = pusher.call("PATCH", f"/buckets/{bucket}/channels/prod", body)
            assert got["channel"]["version"]["fingerprint"] == fingerprint

    run_parallel(
        [
            partial(writer, pushers[w % len(pushers)], fingerprints[w::CHANNEL_WRITERS])
            for w in range(CHANNEL_WRITERS)
        ]
    )
    path = f"/buckets/{bucket}/channels/prod"
    history = pushers[0].call("GET", path + "/history", allow=set())
    assert history["count"] == total
    assigned = [h["version"]["fingerprint"] for h in history["history"]]
    assert sorted(assigned) == sorted(fingerprints)  # every update recorded exactly once
    current = pushers[0].call("GET", path)["channel"]["version"]["fingerprint"]
    assert current == assigned[0]  # newest first: the channel serves the last write


# --- one in-process server, on each backend ---------------------------------------------------


@pytest.fixture
def pushers(base_url: str, tenant: TenantFixture) -> Iterator[list[Pusher]]:
    token = tenant.identities[Role.CONTRIBUTOR].token
    made = [Pusher(base_url, token, tenant.organization_id, tenant.project_id) for _ in range(6)]
    yield made
    for p in made:
        p.close()


def test_concurrent_pushes(pushers: list[Pusher], services: Services) -> None:
    race_pushes(pushers)
    assert_pushed(pushers[0])
    assert check(services.store).violations == []


def test_same_build_created_twice_in_parallel(pushers: list[Pusher], services: Services) -> None:
    race_same_build(pushers, "twice", "fp-twice")
    assert check(services.store).violations == []


def test_concurrent_channel_updates(pushers: list[Pusher], services: Services) -> None:
    race_channel_updates(pushers)
    assert check(services.store).violations == []


# --- two `packyard serve` processes sharing one PostgreSQL --------------------------------------


def test_two_servers_sharing_postgresql(tmp_path: Path, empty_pg_url: str) -> None:
    with (
        plain_http_server(tmp_path / "a", empty_pg_url) as first,
        plain_http_server(tmp_path / "b", empty_pg_url) as second,
    ):
        # One bootstrap for both: the second server found the tenant the first created.
        assert (tmp_path / "a" / "credentials.json").exists() != (
            tmp_path / "b" / "credentials.json"
        ).exists()
        data_dir = tmp_path / ("a" if (tmp_path / "a" / "credentials.json").exists() else "b")
        token, org, project = admin_token(first.base_url, data_dir)
        pushers = [
            Pusher(server.base_url, token, org, project)
            for server in (first, second, first, second)
        ]
        try:
            race_pushes(pushers)
            assert_pushed(pushers[1])
            assert_pushed(pushers[0])
            race_same_build(pushers, "twice", "fp-twice")
            race_channel_updates(pushers)
        finally:
            for p in pushers:
                p.close()
        # Both servers keep answering after the storm.
        for server in (first, second):
            assert httpx.get(server.base_url + "/openapi.json", timeout=30).status_code == 200
    result = run_check_cli(database_url=empty_pg_url)
    assert result.returncode == 0, result.stdout + result.stderr
