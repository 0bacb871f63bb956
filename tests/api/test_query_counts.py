"""Read paths run a fixed number of SQL statements, whatever the amount of content.

Each request is measured through the real HTTP server; the statements counted
include authorization, which is constant too.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from bench.sqlcount import BACKGROUND_THREADS
from sqlalchemy import event

from packyard.api.calls import READ_THREAD_NAME, WRITE_THREAD_NAME
from packyard.services import keys
from packyard.services.container import Services
from tests.support.factories import Api
from tests.support.querycount import StatementLog, count_statements


@pytest.fixture
def base_url(uncached_base_url: str) -> str:
    """Counts measure the full work of each request, so the response cache is off."""
    return uncached_base_url


def measure(
    api: Api,
    services: Services,
    path: str,
    *,
    method: str = "GET",
    json: Any = None,
    params: dict[str, str] | None = None,
) -> StatementLog:
    api.ok(api.request(method, path, json, params=params))  # warm caches and connections
    with count_statements(services.store.engine) as log:
        response = api.request(method, path, json, params=params)
    assert response.status_code == 200, response.text
    return log


def push(api: Api, bucket: str, fp: str, builds: int, artifacts: int, **done: Any) -> None:
    api.create_version(bucket, fp)
    created = [api.create_build(bucket, fp, f"null.b{i}") for i in range(builds)]
    for b in created:
        api.finish_build(
            bucket,
            fp,
            b["id"],
            artifacts=[
                {"external_identifier": f"{fp}-{b['id']}-{j}", "region": f"r{j}"}
                for j in range(artifacts)
            ],
            **done,
        )


def assert_same(small: StatementLog, large: StatementLog) -> None:
    assert small.count == large.count, (small, large)
    # The bucket and the content itself (authorization may come from the role cache):
    # something is always read. GetChannel reads its bucket, channel and version with
    # builds, artifacts and parent edges in one statement.
    assert 1 <= small.count <= 12, small


def test_get_version_and_get_channel_are_constant(api: Api, services: Services) -> None:
    api.create_bucket("small")
    api.create_bucket("large")
    push(api, "small", "fp-s", builds=1, artifacts=1)
    push(api, "large", "fp-l", builds=10, artifacts=10)
    for bucket in ("small", "large"):
        api.ok(
            api.post(
                f"/buckets/{bucket}/channels",
                {"name": "release", "version_fingerprint": f"fp-{bucket[0]}"},
            )
        )
    large = api.ok(api.get("/buckets/large/versions/fp-l"))["version"]
    assert len(large["builds"]) == 10 and all(len(b["artifacts"]) == 10 for b in large["builds"])

    assert_same(
        measure(api, services, "/buckets/small/versions/fp-s"),
        measure(api, services, "/buckets/large/versions/fp-l"),
    )
    for channel in ("release", "latest"):
        assert_same(
            measure(api, services, f"/buckets/small/channels/{channel}"),
            measure(api, services, f"/buckets/large/channels/{channel}"),
        )
    assert_same(measure(api, services, "/buckets/small"), measure(api, services, "/buckets/large"))


@pytest.mark.parametrize(
    "path", ["/buckets/golden/channels/release", "/buckets/golden/versions/fp-1"]
)
def test_get_channel_and_get_version_are_one_statement_without_a_transaction(
    api: Api, services: Services, path: str
) -> None:
    api.create_bucket("golden")
    push(api, "golden", "fp-1", builds=2, artifacts=2)
    api.ok(api.post("/buckets/golden/channels", {"name": "release", "version_fingerprint": "fp-1"}))
    begins: list[str] = []

    def on_begin(conn: object) -> None:
        if threading.current_thread().name not in BACKGROUND_THREADS:
            begins.append(threading.current_thread().name)

    api.ok(api.get(path))  # warm caches and connections
    event.listen(services.store.engine, "begin", on_begin)
    try:
        with count_statements(services.store.engine) as log:
            api.ok(api.get(path))
    finally:
        event.remove(services.store.engine, "begin", on_begin)
    assert log.count == 1, log
    assert begins == []


def grow_project(api: Api, start: int, count: int) -> None:
    """``count`` more buckets, each with a complete 2x2 version built from `base` v1."""
    base = api.ok(api.get("/buckets/base/versions/base-1"))["version"]
    latest = api.ok(api.get("/buckets/base/channels/latest"))["channel"]
    for i in range(start, start + count):
        bucket = f"app-{i:02d}"
        api.create_bucket(bucket)
        push(
            api,
            bucket,
            f"{bucket}-v1",
            builds=2,
            artifacts=2,
            parent_version_id=base["id"],
            parent_channel_id=latest["id"],
        )


def test_list_buckets_is_constant(api: Api, services: Services) -> None:
    api.create_bucket("base")
    push(api, "base", "base-1", builds=1, artifacts=1)
    grow_project(api, 0, 2)
    small = measure(api, services, "/buckets")
    grow_project(api, 2, 4)
    large = measure(api, services, "/buckets")
    assert len(api.ok(api.get("/buckets"))["buckets"]) == 7
    assert_same(small, large)


def test_list_channels_and_versions_are_constant(api: Api, services: Services) -> None:
    api.create_bucket("golden")

    def grow(start: int, count: int) -> None:
        for i in range(start, start + count):
            push(api, "golden", f"fp-{i}", builds=2, artifacts=2)
            api.ok(
                api.post(
                    "/buckets/golden/channels",
                    {"name": f"ch-{i}", "version_fingerprint": f"fp-{i}"},
                )
            )

    grow(0, 2)
    channels_small = measure(api, services, "/buckets/golden/channels")
    versions_small = measure(api, services, "/buckets/golden/versions")
    grow(2, 4)
    assert len(api.ok(api.get("/buckets/golden/channels"))["channels"]) == 7
    assert_same(channels_small, measure(api, services, "/buckets/golden/channels"))
    assert_same(versions_small, measure(api, services, "/buckets/golden/versions"))


def test_history_is_constant(api: Api, services: Services) -> None:
    api.create_bucket("golden")
    for i in range(6):
        push(api, "golden", f"fp-{i}", builds=2, artifacts=2)
    api.ok(api.post("/buckets/golden/channels", {"name": "release"}))

    def assign(fps: list[str]) -> None:
        for fp in fps:
            api.ok(
                api.patch(
                    "/buckets/golden/channels/release",
                    {"version_fingerprint": fp, "update_mask": "versionFingerprint"},
                )
            )

    path = "/buckets/golden/channels/release/history"
    assign(["fp-0", "fp-1"])
    small = measure(api, services, path)
    assign(["fp-2", "fp-3", "fp-4", "fp-5", "fp-0"])
    large = measure(api, services, path)
    assert api.ok(api.get(path))["count"] == 7
    assert_same(small, large)
    assert_same(
        measure(api, services, "/buckets/golden/channels/latest/history"),
        measure(api, services, path, params={"pagination.page_size": "3"}),
    )


def test_ancestry_is_constant(api: Api, services: Services) -> None:
    api.create_bucket("base")
    push(api, "base", "base-1", builds=1, artifacts=1)
    grow_project(api, 0, 2)
    small = measure(api, services, "/buckets/base/ancestry")
    small_parents = measure(api, services, "/buckets/app-00/ancestry")
    grow_project(api, 2, 4)
    large = measure(api, services, "/buckets/base/ancestry")
    assert api.ok(api.get("/buckets/base/ancestry"))["total_count"] == 6
    assert_same(small, large)
    assert_same(small_parents, measure(api, services, "/buckets/app-05/ancestry"))


def test_search_is_constant(api: Api, services: Services) -> None:
    def grow(start: int, count: int) -> None:
        for i in range(start, start + count):
            bucket = f"web-{i}"
            api.create_bucket(bucket)
            api.create_version(bucket, "fp")
            builds = [api.create_build(bucket, "fp", f"null.b{j}") for j in range(3)]
            for b in builds:
                api.finish_build(
                    bucket,
                    "fp",
                    b["id"],
                    artifacts=[
                        {"external_identifier": "img-shared", "region": "r1"},
                        {"external_identifier": f"img-{b['id']}", "region": "r2"},
                    ],
                )

    body = {"external_identifier": "img-shared"}
    grow(0, 1)
    small = measure(api, services, "/_search/external_artifact", method="POST", json=body)
    grow(1, 4)
    large = measure(api, services, "/_search/external_artifact", method="POST", json=body)
    hits = api.ok(api.post("/_search/external_artifact", body))["artifacts"]
    assert len(hits) == 15
    assert_same(small, large)


def test_the_counts_leave_out_every_thread_the_server_runs_on_its_own_schedule(
    base_url: str,
) -> None:
    """A server thread that reads the database on a timer (the revocation scheduler, the
    signing keys' refresher, …) and is not left out makes the counts drift by chance."""
    request_threads = (READ_THREAD_NAME, WRITE_THREAD_NAME)
    own = {
        thread.name
        for thread in threading.enumerate()
        if thread.name.startswith("packyard-") and not thread.name.startswith(request_threads)
    }
    assert keys.THREAD_NAME in own
    assert own <= set(BACKGROUND_THREADS)
