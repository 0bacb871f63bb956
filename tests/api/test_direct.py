"""Direct route calls answer exactly as FastAPI's own request handling does.

The same requests go to two servers over one registry: the application as
shipped (simple routes called directly) and the same application with FastAPI's
router dispatching everything. Their answers must be the same, byte for byte
where the request changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, Request
from fastapi.routing import APIRoute

from packyard.api.app import create_app
from packyard.api.direct import DirectRoutes, direct_handler
from packyard.api.responses import JSONBody
from packyard.services.container import Services
from tests.support.factories import Api, TenantFixture
from tests.support.server import serving_app

# The Packer push sequence and the consumer reads: these must never fall back to
# FastAPI's generic handling because of an innocent-looking signature change.
HOT = {
    "get_bucket",
    "get_version",
    "create_version",
    "update_version",
    "list_builds",
    "create_build",
    "update_build",
    "get_channel",
    "update_channel",
    "list_buckets",
    "get_enforced_blocks_by_bucket",
    "search_external_artifact",
}
SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "cache-control")


@pytest.fixture
def backend() -> str:
    return "sqlite"  # dispatch does not depend on the database


def _apps(services: Services) -> tuple[FastAPI, FastAPI]:
    direct = create_app(services, background_jobs=False, response_cache_mb=0)
    generic = create_app(services, background_jobs=False, response_cache_mb=0, direct_routes=False)
    return direct, generic


@pytest.fixture
def pair(services: Services, tenant: TenantFixture) -> Iterator[tuple[Api, Api]]:
    direct, generic = _apps(services)
    with serving_app(direct) as direct_url, serving_app(generic) as generic_url:
        a, b = Api(direct_url, tenant), Api(generic_url, tenant)
        yield a, b
        a.close()
        b.close()


def test_the_hot_routes_are_called_directly(services: Services) -> None:
    app, _ = _apps(services)
    routes: DirectRoutes = app.state.direct_routes
    direct = {handler.route.name for handler in routes.handlers}
    assert direct >= HOT, HOT - direct


def _same(a: httpx.Response, b: httpx.Response) -> dict[str, Any]:
    assert a.status_code == b.status_code, (a.text, b.text)
    assert a.headers.get("content-type") == b.headers.get("content-type")
    assert a.headers.get("www-authenticate") == b.headers.get("www-authenticate")
    for name in SECURITY_HEADERS:
        assert a.headers.get(name) == b.headers.get(name), name
    assert a.content == b.content
    body: dict[str, Any] = a.json() if a.content else {}
    return body


def _raw(api: Api, method: str, path: str, content: bytes, content_type: str | None) -> Any:
    headers = api.headers()
    if content_type is not None:
        headers["Content-Type"] = content_type
    return api.http.request(method, api.prefix + path, content=content, headers=headers)


@pytest.fixture
def version(pair: tuple[Api, Api]) -> tuple[str, str, str]:
    api = pair[0]
    api.create_bucket("direct")
    api.create_version("direct", "fp-1")
    build = api.create_build("direct", "fp-1", "amazon-ebs.ubuntu")
    return "direct", "fp-1", str(build["id"])


def test_reads_and_refusals_are_identical(
    pair: tuple[Api, Api], version: tuple[str, str, str]
) -> None:
    a, b = pair
    bucket, fp, build = version
    for path in (
        f"/buckets/{bucket}",
        f"/buckets/{bucket}/versions/{fp}",
        f"/buckets/{bucket}/versions/{fp}/builds",
        f"/buckets/{bucket}/versions/{fp}/builds/{build}",
        f"/buckets/{bucket}/versions/{fp}/builds?pagination.page_size=1",
        f"/buckets/{bucket}/versions/{fp}/builds?pagination.page_size=-4",
        "/buckets/nope",
        f"/buckets/{bucket}/versions/missing",
        f"/buckets/{bucket}/channels/missing",
        f"/buckets/{bucket}/",  # trailing slash: FastAPI's redirect or refusal
        f"/buckets/{bucket}/nothing-here",
        "/buckets/a%20b",
    ):
        _same(a.get(path), b.get(path))
    # Wrong method on a direct route's path: FastAPI's answer (405 mapped to code 12).
    body = _same(
        a.put(f"/buckets/{bucket}/versions/{fp}"), b.put(f"/buckets/{bucket}/versions/{fp}")
    )
    assert body["code"] == 12


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"{", "application/json"),
        (b"[]", "application/json"),
        (b'"done"', "application/json"),
        (b"", "application/json"),
        (b'{"status": 7}', "application/json"),
        (b'{"status": "BUILD_BOGUS"}', "application/json"),
        (b'{"status": "BUILD_RUNNING"}', None),
        (b'{"status": "BUILD_RUNNING"}', "text/plain"),
        (b'{"labels": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
        (b"\xff\xfe", "application/json"),
        (b'{"platform": "aws\\ud800"}', "application/json"),  # a lone surrogate, escaped
        (b'{"labels": {"k\xed\xa0\x80": "v"}}', "application/json"),  # ... and raw
    ],
)
def test_bad_bodies_get_the_same_answer(
    pair: tuple[Api, Api],
    version: tuple[str, str, str],
    content: bytes,
    content_type: str | None,
) -> None:
    a, b = pair
    bucket, fp, build = version
    path = f"/buckets/{bucket}/versions/{fp}/builds/{build}"
    body = _same(
        _raw(a, "PATCH", path, content, content_type), _raw(b, "PATCH", path, content, content_type)
    )
    assert body["code"] == 3, body


def test_authentication_is_checked_the_same_way(
    pair: tuple[Api, Api], version: tuple[str, str, str]
) -> None:
    a, b = pair
    bucket, fp, build = version
    path = a.prefix + f"/buckets/{bucket}/versions/{fp}/builds/{build}"
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        for method, content in (("GET", None), ("PATCH", b"{")):
            _same(
                a.http.request(method, path, headers=headers, content=content),
                b.http.request(method, path, headers=headers, content=content),
            )


def test_writes_answer_the_same(pair: tuple[Api, Api], version: tuple[str, str, str]) -> None:
    a, b = pair
    bucket, fp, _ = version
    made = [
        api.ok(api.post(f"/buckets/{bucket}/versions/{fp}/builds", {"component_type": name}))
        for api, name in ((a, "null.a"), (b, "null.b"))
    ]
    assert made[0]["build"].keys() == made[1]["build"].keys()
    assert made[0]["build"]["component_type"] == "null.a"
    # A duplicate is refused alike (code 6, which Packer tolerates).
    dup = {"component_type": "null.a"}
    body = _same(
        a.post(f"/buckets/{bucket}/versions/{fp}/builds", dup),
        b.post(f"/buckets/{bucket}/versions/{fp}/builds", dup),
    )
    assert body["code"] == 6


# Route shapes (module level: FastAPI resolves the string annotations here).
async def _endpoint() -> JSONBody:
    return JSONBody({})


async def _sub(request: Request) -> str:
    return "x"


async def _nested(value: Annotated[str, Depends(_sub)]) -> str:
    return value


async def _simple(name: str, request: Request, v: Annotated[str, Depends(_sub)]) -> JSONBody:
    return JSONBody({})


async def _with_query(name: str, limit: int = 3) -> JSONBody:
    return JSONBody({})


async def _with_header(name: str, x_trace: Annotated[str, Header()]) -> JSONBody:
    return JSONBody({})


def _synchronous(name: str) -> JSONBody:
    return JSONBody({})


async def _with_nested(name: str, v: Annotated[str, Depends(_nested)]) -> JSONBody:
    return JSONBody({})


def _route(endpoint: Any, path: str = "/things/{name}") -> APIRoute:
    return APIRoute(path, endpoint, methods=["GET"])


def test_only_the_simple_shape_is_called_directly() -> None:
    assert direct_handler(_route(_simple)) is not None
    for refused in (_with_query, _with_header, _synchronous, _with_nested):
        assert direct_handler(_route(refused)) is None, refused.__name__
    assert direct_handler(_route(_endpoint, "/things/{n:int}")) is None
