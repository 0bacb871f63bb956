"""Packyard's principal API: a project's admins manage its service principals over HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support.factories import Api, TenantFixture, assert_status, make_tenant
from tests.support.wire import fetch_token

PRINCIPAL_FIELDS = {
    "id",
    "client_id",
    "name",
    "role",
    "disabled",
    "organization_id",
    "project_id",
    "created_at",
}


@pytest.fixture(autouse=True)
def no_role_cache(services: Services) -> None:
    services.auth.roles.ttl_s = 0


def _base(tenant: TenantFixture) -> str:
    return (
        f"/packyard/2026-12-01/organizations/{tenant.organization_id}"
        f"/projects/{tenant.project_id}/principals"
    )


def _principal(body: dict[str, Any]) -> dict[str, Any]:
    principal: dict[str, Any] = body["principal"]
    assert set(principal) == PRINCIPAL_FIELDS
    return principal


def test_an_admin_runs_the_whole_lifecycle(api: Api, tenant: TenantFixture) -> None:
    base = _base(tenant)
    created = api.post(base, {"name": "pipeline", "role": "contributor"})
    body = api.ok(created)
    assert created.headers["cache-control"] == "no-store"
    principal = _principal(body)
    assert (principal["name"], principal["role"], principal["disabled"]) == (
        "pipeline",
        "contributor",
        False,
    )
    secret = body["client_secret"]
    token = fetch_token(api.http, principal["client_id"], secret)
    bot = Api(api.base_url, tenant)
    bot.headers = lambda: {"Authorization": f"Bearer {token}"}  # type: ignore[method-assign]
    bot.create_bucket("made-by-bot")

    listed = api.ok(api.get(base))["principals"]
    assert [p["client_id"] for p in listed][-1] == principal["client_id"]
    for p in listed:
        assert set(p) == PRINCIPAL_FIELDS
    assert _principal(api.ok(api.get(f"{base}/{principal['client_id']}"))) == principal

    demoted = _principal(api.ok(api.patch(f"{base}/{principal['id']}", {"role": "viewer"})))
    assert demoted["role"] == "viewer"
    assert_status(bot.put("/buckets", {"name": "refused"}), 403, 7)

    rotated = api.ok(api.post(f"{base}/{principal['id']}/rotate-secret", {"revoke_tokens": True}))
    assert rotated["client_secret"] != secret
    assert_status(bot.get("/buckets"), 401, 16)  # the old token ended with the old secret
    fresh = fetch_token(api.http, principal["client_id"], rotated["client_secret"])
    bot.headers = lambda: {"Authorization": f"Bearer {fresh}"}  # type: ignore[method-assign]
    api.ok(bot.get("/buckets"))

    disabled = _principal(api.ok(api.patch(f"{base}/{principal['id']}", {"disabled": True})))
    assert disabled["disabled"] is True
    assert_status(bot.get("/buckets"), 401, 16)
    api.ok(api.patch(f"{base}/{principal['id']}", {"disabled": False}))

    assert api.ok(api.delete(f"{base}/{principal['id']}")) == {}
    assert_status(api.get(f"{base}/{principal['id']}"), 404, 5)
    # what it authored keeps its name
    assert api.ok(api.get("/buckets/made-by-bot"))["bucket"]["name"] == "made-by-bot"


@pytest.mark.parametrize("role", [Role.VIEWER, Role.CONTRIBUTOR])
def test_non_admins_are_refused(api: Api, tenant: TenantFixture, role: Role) -> None:
    base = _base(tenant)
    other = api.as_role(role)
    target = tenant.identities[Role.VIEWER].client_id
    for response in (
        other.get(base),
        other.post(base, {"name": "x", "role": "admin"}),
        other.patch(f"{base}/{target}", {"role": "admin"}),
        other.post(f"{base}/{target}/rotate-secret"),
        other.delete(f"{base}/{target}"),
    ):
        assert_status(response, 403, 7)
    assert len(api.ok(api.get(base))["principals"]) == 3


def test_other_tenants_are_invisible(api: Api, services: Services, tenant: TenantFixture) -> None:
    other = make_tenant(services)
    assert_status(api.get(_base(other)), 404, 5)  # no role there: as for every project path


def test_bad_input_changes_nothing(api: Api, tenant: TenantFixture) -> None:
    base = _base(tenant)
    before = api.ok(api.get(base))
    admin = tenant.identities[Role.ADMIN].client_id
    for response in (
        api.post(base, {"name": "x"}),
        api.post(base, {"name": "x", "role": "owner"}),
        api.post(base, {"name": "", "role": "viewer"}),
        api.post(base, {"name": "x" * 300, "role": "viewer"}),
        api.patch(f"{base}/{admin}", {"role": "superuser"}),
        api.patch(f"{base}/{admin}", {"disabled": "maybe"}),
    ):
        assert_status(response, 400, 3)
    # the last admin cannot remove itself
    assert_status(api.patch(f"{base}/{admin}", {"role": "viewer"}), 400, 9)
    assert_status(api.patch(f"{base}/{admin}", {"disabled": True}), 400, 9)
    assert_status(api.delete(f"{base}/{admin}"), 400, 9)
    assert_status(api.delete(f"{base}/packyard-nobody"), 404, 5)
    assert api.ok(api.get(base)) == before
