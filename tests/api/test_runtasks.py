"""The registry's run-task API as terraform-provider-hcp's ``hcp_packer_run_task`` calls it:
GetRegistryTFCRunTaskAPI, RegenerateTFCRunTaskHmacKey, Get/UpdateRunTaskConfig."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.services.secrets import Sealer, UnsealError
from packyard.store.schema import run_task_configs
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant
from tests.support.server import running_server
from tests.support.wire import ok

GET_API = "PackerService_GetRegistryTFCRunTaskAPI"
REGENERATE = "PackerService_RegenerateTFCRunTaskHmacKey"
GET_CONFIG = "PackerService_GetRunTaskConfig"
UPDATE_CONFIG = "PackerService_UpdateRunTaskConfig"


def run_task(api: Api) -> dict[str, Any]:
    response = api.get("/runtasks/validation")
    body = ok(response, GET_API)
    assert response.headers["cache-control"] == "no-store"
    assert set(body) == {"api_url", "hmac_key"}
    return body


def regenerate(api: Api, *, headers: dict[str, str] | None = None, **kw: Any) -> str:
    response = api.http.request(
        "PATCH", api.prefix + "/runtasks/hmac", headers={**api.headers(), **(headers or {})}, **kw
    )
    body = ok(response, REGENERATE)
    assert response.headers["cache-control"] == "no-store"
    assert set(body) == {"hmac_key"}
    key: str = body["hmac_key"]
    assert len(key) >= 32
    return key


def shown_in_registry(api: Api) -> Any:
    registry = ok(api.get("/registry"), "PackerService_GetRegistry")["registry"]
    return registry["config"]["tfc_run_task_config"]


def test_the_providers_sequence(api: Api, base_url: str) -> None:
    # Create / Read / data source: GET, stable across calls (applies without regeneration).
    first = run_task(api)
    assert run_task(api) == first
    api_id = first["api_url"].rsplit("/", 1)[1]
    assert first["api_url"] == f"{base_url}/packyard/runtasks/{api_id}"
    assert len(api_id) >= 24
    # regenerate_hmac = true: PATCH with the SDK's empty struct, then Read again.
    second = regenerate(api, json={})
    assert second != first["hmac_key"]
    assert run_task(api) == {"api_url": first["api_url"], "hmac_key": second}
    third = regenerate(api, json={})
    assert third not in (first["hmac_key"], second)
    assert run_task(api)["hmac_key"] == third


@pytest.mark.parametrize(
    "request_kw",
    [
        {"json": {}},
        {"content": b""},
        {"content": b"", "headers_extra": {"Content-Type": "application/json"}},
        {"json": {"location": {"region": {"provider": "aws", "region": "us-east-1"}}}},
    ],
    ids=["empty-object", "no-body", "empty-json-body", "with-location"],
)
def test_regenerate_accepts_the_bodies_clients_send(api: Api, request_kw: dict[str, Any]) -> None:
    before = run_task(api)["hmac_key"]
    extra = request_kw.pop("headers_extra", {})
    key = regenerate(api, headers=extra, **request_kw)
    assert key != before
    assert run_task(api)["hmac_key"] == key


def test_regenerate_before_any_get_creates_the_task(api: Api) -> None:
    key = regenerate(api, json={})
    assert run_task(api)["hmac_key"] == key


def test_only_validation_tasks_exist(api: Api) -> None:
    body = assert_status(api.get("/runtasks/notification"), 400, 3)
    violation = body["details"][0]["field_violations"][0]
    assert violation["field"] == "task_type"
    assert "\n" not in body["message"]
    assert shown_in_registry(api) is None


def test_untracked_image_policy(api: Api) -> None:
    assert ok(api.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": "UNSET"}
    for value in ("FAIL", "WARN", "FAIL"):
        updated = ok(api.patch("/runtasks/config", {"on_untracked_image": value}), UPDATE_CONFIG)
        assert updated == {"on_untracked_image": value}
        assert ok(api.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": value}
    # The SDK omits an unset enum: the policy goes back to UNSET (warn).
    assert ok(api.patch("/runtasks/config", {}), UPDATE_CONFIG) == {"on_untracked_image": "UNSET"}
    body = assert_status(api.patch("/runtasks/config", {"on_untracked_image": "BLOCK"}), 400, 3)
    assert body["details"][0]["field_violations"][0]["field"] == "on_untracked_image"
    assert ok(api.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": "UNSET"}
    # The policy and the key are one configuration: changing one keeps the other.
    key = run_task(api)["hmac_key"]
    ok(api.patch("/runtasks/config", {"on_untracked_image": "WARN"}), UPDATE_CONFIG)
    assert run_task(api)["hmac_key"] == key


def test_viewers_read_the_policy_but_never_the_key(api: Api) -> None:
    viewer = api.as_role(Role.VIEWER)
    assert_status(viewer.get("/runtasks/validation"), 403, 7)
    assert_status(viewer.patch("/runtasks/hmac", {}), 403, 7)
    assert_status(viewer.patch("/runtasks/config", {"on_untracked_image": "FAIL"}), 403, 7)
    # nothing was created by the refused calls
    registry = ok(viewer.get("/registry"), "PackerService_GetRegistry")["registry"]
    assert registry["config"]["tfc_run_task_config"] is None
    assert ok(viewer.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": "UNSET"}
    contributor = api.as_role(Role.CONTRIBUTOR)
    key = run_task(contributor)["hmac_key"]
    assert regenerate(contributor, json={}) != key
    ok(contributor.patch("/runtasks/config", {"on_untracked_image": "FAIL"}), UPDATE_CONFIG)
    assert ok(viewer.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": "FAIL"}
    viewer.close()
    contributor.close()


def test_unauthenticated_calls_are_refused(api: Api) -> None:
    for method, path in (("GET", "/runtasks/validation"), ("PATCH", "/runtasks/hmac")):
        response = api.http.request(method, api.prefix + path, json={})
        assert_status(response, 401, 16)


def test_tenants_are_isolated(api: Api, services: Services, base_url: str) -> None:
    other = Api(base_url, make_tenant(services))
    mine, theirs = run_task(api), run_task(other)
    assert mine["api_url"] != theirs["api_url"]
    assert mine["hmac_key"] != theirs["hmac_key"]
    regenerate(api, json={})
    ok(api.patch("/runtasks/config", {"on_untracked_image": "FAIL"}), UPDATE_CONFIG)
    assert run_task(other) == theirs
    assert ok(other.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": "UNSET"}
    # One tenant's token on the other's path is refused before anything is read.
    foreign = other.http.get(api.prefix + "/runtasks/validation", headers=other.headers())
    assert foreign.status_code in (403, 404), foreign.text
    assert "hmac_key" not in foreign.json()
    other.close()


def test_get_registry_shows_the_task_without_its_key(api: Api) -> None:
    def config() -> httpx.Response:
        return api.get("/registry")

    assert shown_in_registry(api) is None
    task = run_task(api)
    api_id = task["api_url"].rsplit("/", 1)[1]
    seen = [config() for _ in range(3)]  # asked twice at one generation: cached, then served
    assert seen[-1].headers.get("x-packyard-cache") == "hit"
    for response in seen:
        shown = ok(response, "PackerService_GetRegistry")["registry"]["config"]
        assert shown["tfc_run_task_config"] == {
            "api_id": api_id,
            "hmac_key": "",
            "on_untracked_image": "UNSET",
        }
        assert task["hmac_key"] not in response.text
    # A change of policy is seen at once, never a stale cached registry.
    ok(api.patch("/runtasks/config", {"on_untracked_image": "FAIL"}), UPDATE_CONFIG)
    assert shown_in_registry(api)["on_untracked_image"] == "FAIL"


def test_the_database_holds_no_key_in_clear(api: Api, services: Services) -> None:
    keys = [run_task(api)["hmac_key"], regenerate(api, json={})]
    with services.store.read() as conn:
        rows = conn.execute(select(run_task_configs)).all()
    assert len(rows) == 1
    row = rows[0]._mapping
    sealed = bytes(row["hmac_key_sealed"])
    for key in keys:
        for form in (key.encode(), base64.b64encode(key.encode()), key.encode().hex().encode()):
            assert form not in sealed
            assert all(form.decode() not in str(value) for value in row.values())
    database = services.store.engine.url.database
    if services.store.is_sqlite and database:
        files = [Path(database), Path(database + "-wal")]
        dump = b"".join(f.read_bytes() for f in files if f.exists())
        assert all(key.encode() not in dump for key in keys)
    # Sealed for this project only: another project's context does not open it.
    sealer = services.runtasks.sealer
    with pytest.raises(UnsealError):
        sealer.open(sealed, context=b"packyard:run-task-hmac:another-project")


def test_the_run_task_endpoint_finds_its_registry(api: Api, services: Services) -> None:
    task = run_task(api)
    api_id = task["api_url"].rsplit("/", 1)[1]
    target = services.runtasks.by_api_id(api_id)
    assert target is not None
    assert (target.project_id, target.hmac_key) == (
        api.tenant.project_id,
        task["hmac_key"].encode(),
    )
    assert target.on_untracked_image == "UNSET"
    ok(api.patch("/runtasks/config", {"on_untracked_image": "FAIL"}), UPDATE_CONFIG)
    key = regenerate(api, json={})
    target = services.runtasks.by_api_id(api_id)
    assert target is not None
    assert (target.hmac_key, target.on_untracked_image) == (key.encode(), "FAIL")
    assert services.runtasks.by_api_id("no-such-id") is None


def test_another_secret_key_fails_cleanly(
    api: Api, services: Services, tenant: TenantFixture
) -> None:
    """A server whose key did not seal the stored HMAC key answers one line (400/9), never a
    500; regenerating the key is the way out."""
    task = run_task(api)
    api_id = task["api_url"].rsplit("/", 1)[1]
    wrong = Services.create(services.store, Sealer.ephemeral())
    with running_server(wrong) as url:
        client = Api(url, tenant)
        body = assert_status(client.get("/runtasks/validation"), 400, 9)
        assert "secret key" in body["message"] and "\n" not in body["message"]
        assert task["hmac_key"] not in body["message"]
        with pytest.raises(UnsealError):
            wrong.runtasks.by_api_id(api_id)
        # The policy does not need the key; a new key replaces the one no longer readable.
        assert ok(client.get("/runtasks/config"), GET_CONFIG) == {"on_untracked_image": "UNSET"}
        key = regenerate(client, json={})
        assert run_task(client)["hmac_key"] == key
        client.close()
