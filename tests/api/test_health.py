"""Operators' endpoints: /healthz, /readyz, /version (no authentication, never cached)."""

from __future__ import annotations

import shutil
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from packyard import __version__
from packyard.api.app import create_app
from packyard.api.health import READY_TIMEOUT_S
from packyard.services.container import Services
from packyard.store.engine import Store, sqlite_url
from tests.support.factories import Api
from tests.support.serve_process import ServeProcess
from tests.support.server import serving_app

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _check_plain_json(response: httpx.Response, status: int, body: dict[str, str]) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == body
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, name
    assert "x-packyard-cache" not in response.headers


def test_health_ready_and_version_need_no_authentication(api: Api, base_url: str) -> None:
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for _ in range(3):  # repeated: a read the cache would store the second time
            _check_plain_json(client.get("/healthz"), 200, {"status": "ok"})
            _check_plain_json(client.get("/readyz"), 200, {"status": "ready", "database": "ok"})
            _check_plain_json(client.get("/version"), 200, {"version": __version__})
        # A bad token changes nothing: these endpoints never look at it.
        bad = {"Authorization": "Bearer not-a-token"}
        _check_plain_json(client.get("/healthz", headers=bad), 200, {"status": "ok"})
        _check_plain_json(
            client.get("/readyz", headers=bad), 200, {"status": "ready", "database": "ok"}
        )
        # Not part of the HCP API document, and other methods are not implemented.
        paths = client.get("/openapi.json").json()["paths"]
        assert not {"/healthz", "/readyz", "/version"} & set(paths)
        assert client.post("/healthz").status_code == 501
        # The API's own routes still answer as before.
        assert client.get("/healthz/").status_code in (307, 308)
    assert api.get("/registry").status_code == 200


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextmanager
def _server_on(url: str) -> Iterator[str]:
    store = Store(url)
    try:
        app = create_app(Services.create(store), background_jobs=False, response_cache_mb=0)
        with serving_app(app) as base:
            yield base
    finally:
        store.dispose()


def test_readyz_is_503_when_the_database_is_unreachable(backend: str, tmp_path: Path) -> None:
    secret = "pw-" + "s3cr3t"
    if backend == "sqlite":
        directory = tmp_path / "gone"
        directory.mkdir()
        url = sqlite_url(str(directory / "packyard.db"))
    else:
        url = f"postgresql+psycopg://packyard:{secret}@127.0.0.1:{_closed_port()}/packyard"
    with _server_on(url) as base, httpx.Client(base_url=base, timeout=30) as client:
        if backend == "sqlite":
            shutil.rmtree(tmp_path / "gone")  # the file and its directory: nothing to open
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < READY_TIMEOUT_S + 2
        assert response.status_code == 503, response.text
        body = response.json()
        assert body["status"] == "unavailable"
        assert body["database"].startswith("error: "), body
        for leak in (secret, "127.0.0.1", "packyard.db", "Traceback"):
            assert leak not in response.text
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, name
        # Liveness does not depend on the database.
        _check_plain_json(client.get("/healthz"), 200, {"status": "ok"})


def test_readyz_answers_within_its_time_limit_when_the_database_never_answers() -> None:
    # A listening socket that never accepts: the TCP handshake completes and the
    # PostgreSQL connection then waits for a greeting that never comes.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        url = f"postgresql+psycopg://packyard:x@127.0.0.1:{port}/packyard"
        with _server_on(url) as base, httpx.Client(base_url=base, timeout=30) as client:
            started = time.monotonic()
            response = client.get("/readyz")
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.json() == {
                "status": "unavailable",
                "database": f"no answer within {READY_TIMEOUT_S:g} s",
            }
            assert READY_TIMEOUT_S - 0.5 < elapsed < READY_TIMEOUT_S + 2
            _check_plain_json(client.get("/healthz"), 200, {"status": "ok"})


def test_serve_answers_healthz_on_its_tls_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with ServeProcess(data_dir) as server:
        banner = f"Packyard {__version__} serving on https://"
        assert banner in server.wait_for_stderr(banner)
        context = ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))
        with httpx.Client(base_url=server.base_url, verify=context, timeout=30) as client:
            _check_plain_json(client.get("/healthz"), 200, {"status": "ok"})
            _check_plain_json(client.get("/readyz"), 200, {"status": "ready", "database": "ok"})
            _check_plain_json(client.get("/version"), 200, {"version": __version__})


def test_the_routes_come_last_and_are_called_directly(services: Services) -> None:
    app = create_app(services, background_jobs=False, response_cache_mb=0)
    last = [getattr(route, "path", None) for route in app.router.routes[-4:]]
    assert last == ["/healthz", "/readyz", "/version", "/metrics"]  # behind every API route
    direct = {handler.route.name for handler in app.state.direct_routes.handlers}
    assert {"healthz", "readyz", "version"} <= direct
