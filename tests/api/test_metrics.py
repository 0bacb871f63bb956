"""/metrics: Prometheus text format, bounded labels without tenant data, and who may read it."""

from __future__ import annotations

import os
import socket
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from packyard.api.app import create_app
from packyard.metrics import METHODS, UNMATCHED
from packyard.services.container import Services
from tests.support.factories import Api, unique
from tests.support.revocation import revoke
from tests.support.serve_process import plain_http_server
from tests.support.server import serving_app

FAMILIES = {
    "packyard_http_requests": "counter",
    "packyard_http_request_duration_seconds": "histogram",
    "packyard_response_cache_lookups": "counter",
    "packyard_response_cache_bytes": "gauge",
    "packyard_db_pool_connections": "gauge",
    "packyard_scheduled_revocation_lag_seconds": "histogram",
    "packyard_scheduler_last_run_timestamp_seconds": "gauge",
    "packyard_registry_events": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_cpu_seconds": "counter",
}


def scrape(base_url: str, **headers: str) -> dict[str, list[Sample]]:
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        assert FAMILIES.get(family.name, family.type) == family.type, family.name
        found[family.name] = family.samples
    return found


def value(samples: list[Sample], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_scrape_after_requests(api: Api, services: Services, base_url: str) -> None:
    before = scrape(base_url)
    bucket = unique("metrics-bucket")
    api.create_bucket(bucket)
    version = api.complete_version(bucket)
    for _ in range(3):  # the third is a cache hit
        assert api.get(f"/buckets/{bucket}").status_code == 200
    assert api.get(f"/buckets/{unique('missing')}").status_code == 404
    httpx.request("PROPFIND", f"{base_url}/healthz", timeout=10)  # labelled "other"
    revoke(api, bucket, version["fingerprint"], revoke_at="2020-01-01T00:00:00Z")
    # A scheduled revocation whose rollback runs a minute after it fell due.
    late = api.complete_version(bucket)
    future = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    revoke(api, bucket, late["fingerprint"], revoke_at=future)
    services.scheduler.apply_due(datetime.now(UTC) + timedelta(seconds=62))

    after = scrape(base_url)
    assert set(FAMILIES) <= set(after)
    requests = after["packyard_http_requests"]
    get_bucket = {"operation": "PackerService_GetBucket", "method": "GET"}

    def delta(name: str, family: str, **labels: str) -> float:
        return value(after[family], name, **labels) - value(before.get(family, []), name, **labels)

    def answered(**labels: str) -> float:
        return delta("packyard_http_requests_total", "packyard_http_requests", **labels)

    assert answered(status="200", **get_bucket) == 3
    assert answered(status="404", **get_bucket) == 1
    assert answered(method="other") >= 1
    histogram = "packyard_http_request_duration_seconds"
    assert delta(f"{histogram}_count", histogram, status="200", **get_bucket) == 3
    assert delta(f"{histogram}_bucket", histogram, status="200", le="+Inf", **get_bucket) == 3
    cache = "packyard_response_cache_lookups"
    assert delta(f"{cache}_total", cache, result="hit") >= 1
    events = "packyard_registry_events"
    for event, at_least in {
        "versions_created": 2,
        "builds_created": 2,
        "builds_completed": 2,
        "versions_completed": 2,
        "revocations": 2,
        "scheduled_rollbacks_applied": 1,
    }.items():
        assert delta(f"{events}_total", events, event=event) >= at_least, event
    lag = "packyard_scheduled_revocation_lag_seconds"
    assert delta(f"{lag}_count", lag) >= 1
    assert delta(f"{lag}_sum", lag) >= 55  # applied about a minute after it fell due
    backend = "sqlite" if services.store.is_sqlite else "postgresql"
    pool = after["packyard_db_pool_connections"]
    assert {s.labels["state"] for s in pool if s.labels["backend"] == backend} == {
        "size",
        "checked_out",
        "overflow",
    }
    assert value(pool, "packyard_db_pool_connections", backend=backend, state="size") > 0

    # Bounded labels, and nothing of the tenant's in any of them.
    tenant = {api.tenant.organization_id, api.tenant.project_id, bucket, version["fingerprint"]}
    for samples in after.values():
        for sample in samples:
            for label in sample.labels.values():
                assert not any(secret in label for secret in tenant), sample
    templates = {UNMATCHED} | {
        getattr(route, "path", "") for route in create_app(services, background_jobs=False).routes
    }
    for sample in requests:
        assert sample.labels["method"] in METHODS | {"other"}
        operation = sample.labels["operation"]
        assert operation == UNMATCHED or operation.startswith(
            (
                "PackerService_",
                "Packyard_",
                "OrganizationService_",
                "ProjectService_",
                "OAuth2_",
                "/",
            )
        )
        assert operation in templates or "/" not in operation, operation


def test_metrics_token(services: Services) -> None:
    app = create_app(services, background_jobs=False, metrics_token="scrape-me-0123456789")
    with serving_app(app) as base_url:
        assert httpx.get(f"{base_url}/metrics").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert httpx.get(f"{base_url}/metrics", headers=wrong).status_code == 401
        scrape(base_url, Authorization="Bearer scrape-me-0123456789")
        # With a token, a relayed request may scrape too (a scraper behind a proxy).
        scrape(
            base_url,
            Authorization="Bearer scrape-me-0123456789",
            **{"X-Forwarded-For": "203.0.113.9"},
        )


def test_without_a_token_only_direct_loopback_clients_may_scrape(
    services: Services,
) -> None:
    app = create_app(services, background_jobs=False)
    with serving_app(app) as base_url:
        scrape(base_url)
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            relayed = httpx.get(f"{base_url}/metrics", headers={header: "203.0.113.9"})
            assert relayed.status_code == 403
            assert relayed.json()["code"] == 7
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to connect from")
    with socket.socket() as probe:
        probe.bind((address, 0))
        port = probe.getsockname()[1]
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=address, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        remote = httpx.get(f"http://{address}:{port}/metrics", timeout=10)
        assert remote.status_code == 403
        assert httpx.get(f"http://{address}:{port}/healthz", timeout=10).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: it only picks a route
        except OSError:
            return None
        address: str = s.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address  # noqa: S104


@pytest.mark.slow
def test_workers_share_their_metrics(tmp_path: Path) -> None:
    """``serve --workers 2``: a scrape answered by either worker counts every worker's
    requests (prometheus_client's multiprocess mode in a private directory)."""
    with plain_http_server(tmp_path / "data", None, "--workers", "2") as server:
        assert server.process is not None
        supervisor = server.process.pid
        directory = next(Path("/tmp").glob(f"packyard-metrics-{supervisor}-*"))
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        workers = set(server.worker_pids())
        assert len(workers) == 2
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            for _ in range(40):  # new connections: spread over both workers
                assert httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
            time.sleep(1.5)  # each worker adds its requests once a second
            text = client.get("/metrics").text
        families = {f.name: f.samples for f in text_string_to_metric_families(text)}
        served = value(
            families["packyard_http_requests"],
            "packyard_http_requests_total",
            operation="/healthz",
            status="200",
        )
        assert served == 40
        pids = {int(s.labels["pid"]) for s in families["process_resident_memory_bytes"]}
        assert pids == workers
        assert os.path.isdir(directory)
    assert not directory.exists()  # removed when the server stops
