"""Authentication, roles and tenant isolation on the wire."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection

from packyard.domain.enums import Role
from packyard.services import keys
from packyard.services.container import Services
from packyard.services.keys import KeyRing
from packyard.store.engine import Store
from tests.support.clock import ManualClock
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant
from tests.support.server import running_server
from tests.support.wire import craft_token, ok, unsigned_token

WRITES: list[tuple[str, str, Any]] = [
    ("PUT", "/registry", {}),
    ("PATCH", "/registry", {"feature_tier": "PLUS"}),
    ("DELETE", "/registry", None),
    ("PUT", "/buckets", {"name": "new"}),
    ("PATCH", "/buckets/b", {"description": "x"}),
    ("DELETE", "/buckets/b", None),
    ("POST", "/buckets/b/versions", {"fingerprint": "g", "template_type": "HCL2"}),
    ("PATCH", "/buckets/b/versions/f", {"complete": True}),
    ("DELETE", "/buckets/b/versions/f", None),
    ("POST", "/buckets/b/versions/f/builds", {"component_type": "null.z"}),
    ("PATCH", "/buckets/b/versions/f/builds/{build}", {"status": "BUILD_RUNNING"}),
    ("DELETE", "/buckets/b/versions/f/builds/{build}", None),
]

READS = [
    ("/registry", "PackerService_GetRegistry"),
    ("/buckets", "PackerService_ListBuckets"),
    ("/buckets/b", "PackerService_GetBucket"),
    ("/buckets/b/versions", "PackerService_ListVersions"),
    ("/buckets/b/versions/f", "PackerService_GetVersion"),
    ("/buckets/b/versions/f/builds", "PackerService_ListBuilds"),
    ("/buckets/b/versions/f/builds/{build}", "PackerService_GetBuild"),
]


@pytest.fixture
def content(api: Api) -> dict[str, str]:
    api.create_bucket("b")
    api.create_version("b", "f")
    build = api.create_build("b", "f", "null.a")
    return {"build": build["id"]}


def _bearer(api: Api, token: str, path: str = "/buckets") -> httpx.Response:
    return api.http.get(api.prefix + path, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("method", "path", "body"), WRITES)
def test_viewer_cannot_write(
    api: Api, content: dict[str, str], method: str, path: str, body: Any
) -> None:
    viewer = api.as_role(Role.VIEWER)
    response = viewer.request(method, path.format(**content), body)
    out = assert_status(response, 403, 7)
    assert "viewer" in out["message"]
    viewer.close()


@pytest.mark.parametrize(("path", "operation"), READS)
def test_viewer_can_read(api: Api, content: dict[str, str], path: str, operation: str) -> None:
    viewer = api.as_role(Role.VIEWER)
    ok(viewer.get(path.format(**content)), operation)
    viewer.close()


def test_contributor_can_push(api: Api) -> None:
    contributor = api.as_role(Role.CONTRIBUTOR)
    contributor.create_bucket("c")
    version = contributor.complete_version("c", "fp")
    assert version["name"] == "v1"
    assert version["author_id"] == "contributor-sp"
    contributor.close()


def test_missing_token_is_401_code_16(api: Api) -> None:
    response = api.http.get(api.prefix + "/buckets")
    assert_status(response, 401, 16)
    assert response.headers["www-authenticate"] == "Bearer"
    basic = api.http.get(api.prefix + "/buckets", headers={"Authorization": "Basic eDp5"})
    assert_status(basic, 401, 16)
    empty = api.http.get(api.prefix + "/buckets", headers={"Authorization": "Bearer"})
    assert_status(empty, 401, 16)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_bad_tokens_are_401_code_16(api: Api, services: Services, tenant: TenantFixture) -> None:
    sub = tenant.identities[Role.ADMIN].principal_id
    key = services.auth.signing_key()
    tokens = {
        "garbage": "not-a-token",
        "truncated": tenant.identities[Role.ADMIN].token[:-5],
        "expired": craft_token(key, sub=sub, exp_offset=-10),
        "forged": craft_token(b"another key of thirty-two bytes!", sub=sub),
        "alg none": unsigned_token(sub=sub),
        "wrong audience": craft_token(key, sub=sub, aud="someone-else"),
        "HS512": craft_token(key, sub=sub, algorithm="HS512"),
        "unknown principal": craft_token(key, sub="01HZZZZZZZZZZZZZZZZZZZZZZZ"),
    }
    for name, token in tokens.items():
        body = assert_status(_bearer(api, token), 401, 16)
        assert token not in body["message"], name
        rm = api.http.get(
            "/resource-manager/2019-12-10/organizations",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert_status(rm, 401, 16)
    # the genuine article works
    ok(_bearer(api, craft_token(key, sub=sub)), "PackerService_ListBuckets")


def test_expired_token_message(api: Api, services: Services, tenant: TenantFixture) -> None:
    sub = tenant.identities[Role.ADMIN].principal_id
    token = craft_token(services.auth.signing_key(), sub=sub, exp_offset=-10)
    body = assert_status(_bearer(api, token), 401, 16)
    assert "expired" in body["message"]


def test_other_tenant_paths_are_404_code_5(api: Api, services: Services) -> None:
    api.create_bucket("b")
    api.create_version("b", "f")
    other = make_tenant(services)
    intruder = Api(api.base_url, other)
    # the intruder's token on the first tenant's paths
    intruder_prefix_swap = Api(api.base_url, api.tenant)
    intruder_prefix_swap.headers = intruder.headers  # type: ignore[method-assign]
    for method, path, body in [
        ("GET", "/registry", None),
        ("GET", "/buckets", None),
        ("GET", "/buckets/b", None),
        ("PUT", "/buckets", {"name": "x"}),
        ("GET", "/buckets/b/versions/f", None),
        ("GET", "/buckets/b/versions/f/builds", None),
        ("DELETE", "/buckets/b", None),
        ("GET", "/buckets/b/channels/latest", None),
        ("GET", "/enforced_blocks/bucket/b", None),
    ]:
        assert_status(intruder_prefix_swap.request(method, path, body), 404, 5)
    # the first tenant's data is untouched and invisible from the second tenant
    ok(api.get("/buckets/b"), "PackerService_GetBucket")
    listing = ok(intruder.get("/buckets"), "PackerService_ListBuckets")
    assert listing["buckets"] == []
    assert_status(intruder.get("/buckets/b"), 404, 5)
    # same bucket name in both tenants: independent objects
    mine = intruder.create_bucket("b")
    assert mine["id"] != ok(api.get("/buckets/b"), "PackerService_GetBucket")["bucket"]["id"]
    intruder.close()
    intruder_prefix_swap.close()


def test_mismatched_org_and_project_is_404(api: Api, services: Services) -> None:
    other = make_tenant(services)
    t = api.tenant
    # own project under a foreign organization, and a foreign project under the own organization
    for org, project in (
        (other.organization_id, t.project_id),
        (t.organization_id, other.project_id),
    ):
        path = f"/packer/2023-01-01/organizations/{org}/projects/{project}/buckets"
        assert_status(api.get(path), 404, 5)
    # garbage ids
    assert_status(api.get("/packer/2023-01-01/organizations/x/projects/y/buckets"), 404, 5)


def test_ids_from_another_tenant_are_not_accepted(api: Api, services: Services) -> None:
    other = make_tenant(services)
    foreign = Api(api.base_url, other)
    foreign.create_bucket("p")
    foreign_version = foreign.complete_version("p", "pf")
    foreign_build = foreign_version["builds"][0]
    api.create_bucket("b")
    api.create_version("b", "f")
    build = api.create_build("b", "f", "null.a")
    # a parent version of another tenant does not exist here
    body = assert_status(
        api.update_build(
            "b",
            "f",
            build["id"],
            status="BUILD_DONE",
            artifacts=[{"external_identifier": "a", "region": "r"}],
            parent_version_id=foreign_version["id"],
        ),
        400,
        3,
    )
    assert "does not exist" in body["message"]
    # a build id of another tenant is unknown here
    assert_status(api.get(f"/buckets/b/versions/f/builds/{foreign_build['id']}"), 404, 5)
    assert_status(api.update_build("b", "f", foreign_build["id"], status="BUILD_RUNNING"), 404, 5)
    # and the refused update changed nothing
    got = ok(api.get(f"/buckets/b/versions/f/builds/{build['id']}"), "PackerService_GetBuild")
    assert got["build"]["status"] == "BUILD_UNSET"
    foreign.close()


def test_parent_ids_are_set_once(api: Api) -> None:
    api.create_bucket("parent")
    p1 = api.complete_version("parent", "p1")
    p2 = api.complete_version("parent", "p2")
    api.create_bucket("child")
    api.create_version("child", "c")
    build = api.create_build("child", "c", "null.a", parent_version_id=p1["id"])
    assert_status(api.update_build("child", "c", build["id"], parent_version_id=p2["id"]), 400, 6)
    # the same value again is fine
    ok(
        api.update_build("child", "c", build["id"], parent_version_id=p1["id"]),
        "PackerService_UpdateBuild",
    )


def test_the_event_loop_verifies_tokens_without_reading_the_keys(
    services: Services,
    tenant: TenantFixture,
    backend: str,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The signing keys are read again on a thread of the server's: a read on the event loop
    would hold every request while the database does not answer. The keys have a store of
    their own here, its reads recorded."""
    monkeypatch.setattr(keys, "BACKGROUND_REFRESH_S", 3600)  # the refresher's first read only
    clock = ManualClock()
    keys_store, other_store = Store(db_url), Store(db_url)
    services.auth.keys = KeyRing(keys_store, clock=clock)
    on_loop: list[str] = []
    real = keys_store.read

    def read() -> AbstractContextManager[Connection]:
        with contextlib.suppress(RuntimeError):
            asyncio.get_running_loop()
            on_loop.append(threading.current_thread().name)
        return real()

    monkeypatch.setattr(keys_store, "read", read)
    with running_server(services) as base_url:
        api = Api(base_url, tenant)
        api.create_bucket("b")
        clock.now += keys.REFRESH_S  # the keys are due: left to the refresher
        for path, operation in READS[1:3] * 2:
            ok(api.get(path), operation)
        assert on_loop == []
        # Another server rotates and signs a token with a key this one has not read: the
        # request's role lookup reads it, on a read thread (on SQLite every read runs on the
        # event loop, by design: the database is a local file).
        other = Services.create(other_store)
        other.auth.keys.rotate(timedelta(hours=1))
        ident = tenant.identities[Role.ADMIN]
        principal = other.auth.authenticate_client(ident.client_id, ident.client_secret)
        assert principal is not None
        fresh = other.auth.issue_token(principal).access_token
        clock.now += keys.UNKNOWN_KEY_REFRESH_S
        for path, operation in READS[1:3] * 2:
            ok(_bearer(api, fresh, path), operation)
        api.close()
    keys_store.dispose()
    other_store.dispose()
    assert len(on_loop) == (1 if backend == "sqlite" else 0)
