"""An unexpected exception answers 500/13 as a Status and keeps the keep-alive connection."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from packyard.api.app import create_app
from packyard.services.container import Services
from tests.support.factories import Api, assert_status
from tests.support.server import serving_app
from tests.support.wire import ok


@pytest.fixture
def broken_app(services: Services) -> FastAPI:
    app = create_app(services, background_jobs=False)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("boom with a secret-looking value s3cr3t")

    return app


def test_unexpected_error_keeps_the_connection(
    broken_app: FastAPI, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        serving_app(broken_app, log_level="critical") as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        ports = set()
        for _ in range(3):
            response = http.get("/boom")
            body = assert_status(response, 500, 13)
            assert body["message"] == "Internal error."
            assert "s3cr3t" not in response.text
            assert response.headers["x-content-type-options"] == "nosniff"
            ports.add(response.extensions["network_stream"].get_extra_info("client_addr"))
            # the next request on the same connection is answered normally
            assert http.get("/openapi.json").status_code == 200
        assert len(ports) == 1
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_too_long_run_uuid_is_invalid_argument(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    assert_status(
        api.post(
            "/buckets/b/versions/f/builds", {"component_type": "x", "packer_run_uuid": "u" * 129}
        ),
        400,
        3,
    )
    build = ok(
        api.post(
            "/buckets/b/versions/f/builds", {"component_type": "x", "packer_run_uuid": "u" * 128}
        ),
        "PackerService_CreateBuild",
    )["build"]
    assert_status(
        api.update_build("b", "f", build["id"], packer_run_uuid="v" * 200, status="BUILD_RUNNING"),
        400,
        3,
    )
    # the connection is still fine after the refusals
    ok(api.get(f"/buckets/b/versions/f/builds/{build['id']}"), "PackerService_GetBuild")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("component_type", "c" * 257),
        ("platform", "p" * 257),
        ("source_external_identifier", "s" * 1025),
    ],
)
def test_column_sized_fields_are_validated(api: Api, field: str, value: str) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    body = {"component_type": "x", field: value}
    assert_status(api.post("/buckets/b/versions/f/builds", body), 400, 3)


def test_long_artifact_fields_are_validated(api: Api) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    build = api.create_build("b", "f", "x")
    for artifact in (
        {"external_identifier": "e" * 1025},
        {"external_identifier": "e", "region": "r" * 257},
    ):
        assert_status(
            api.update_build("b", "f", build["id"], status="BUILD_DONE", artifacts=[artifact]),
            400,
            3,
        )
