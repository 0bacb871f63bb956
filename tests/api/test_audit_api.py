"""``GET /packyard/2026-12-01/…/audit`` over real HTTP: admins list, filter and page the
project's audit log; others are refused."""

from __future__ import annotations

from typing import Any

from packyard.domain.enums import Role
from packyard.domain.events import AuditAction
from packyard.services.container import Services
from tests.support.audit import add, add_failure, caller
from tests.support.factories import Api, TenantFixture, make_tenant


def _audit(api: Api, tenant: TenantFixture | None = None, /, **params: Any) -> Any:
    t = tenant or api.tenant
    path = f"/packyard/2026-12-01/organizations/{t.organization_id}/projects/{t.project_id}/audit"
    return api.get(path, params=params)


def _mine(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries this module wrote (the services audit their own changes too)."""
    return [e for e in events if e["actor"]["principal_id"].startswith("sp-")]


def _fill(services: Services, tenant: TenantFixture) -> None:
    project = tenant.project_id
    alice = caller(project, "alice", organization_id=tenant.organization_id)
    bob = caller(project, "bob", organization_id=tenant.organization_id)
    add(services.store, project, alice, "Created bucket", bucket="web")
    add(services.store, project, bob, "Revoked version", action=AuditAction.UPDATE, bucket="web")
    add_failure(services.store, project, bob, "Created bucket", bucket="db")


def test_admins_list_filter_and_page(api: Api, services: Services, tenant: TenantFixture) -> None:
    _fill(services, tenant)
    response = _audit(api)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"events", "next_page_token"}
    events = _mine(body["events"])
    assert [(e["description"], e["status"]) for e in events] == [
        ("Created bucket", "FAILED"),
        ("Revoked version", "OK"),
        ("Created bucket", "OK"),
    ]
    newest = events[0]
    assert newest["project_id"] == tenant.project_id
    assert newest["organization_id"] == tenant.organization_id
    assert newest["error"].startswith("code = INVALID_ARGUMENT")
    assert {"id", "seq", "request_id", "source_address", "timestamp"} <= set(newest)
    seqs = [e["seq"] for e in body["events"]]
    assert seqs == sorted(seqs, reverse=True)

    def descriptions(**params: Any) -> list[str]:
        answer = _audit(api, **params)
        assert answer.status_code == 200, answer.text
        return [e["description"] for e in _mine(answer.json()["events"])]

    assert descriptions(actor="bob") == ["Created bucket", "Revoked version"]
    assert descriptions(actor="sp-alice") == ["Created bucket"]
    assert descriptions(bucket="web") == ["Revoked version", "Created bucket"]
    assert descriptions(action="update") == ["Revoked version"]
    assert descriptions(action="Revoked version") == ["Revoked version"]
    assert descriptions(status="FAILED") == ["Created bucket"]
    assert descriptions(since="1h", until="2999-01-01T00:00:00Z", actor="bob") == [
        "Created bucket",
        "Revoked version",
    ]
    assert descriptions(until="2000-01-01T00:00:00Z") == []

    walked: list[int] = []
    token = ""
    while True:
        page = _audit(api, page_size=1, **({"page_token": token} if token else {})).json()
        assert len(page["events"]) <= 1
        walked += [e["seq"] for e in page["events"]]
        token = page["next_page_token"]
        if not token:
            break
    assert walked == seqs


def test_bad_parameters_are_400(api: Api) -> None:
    for params in (
        {"since": "last week"},
        {"status": "MAYBE"},
        {"page_size": "-1"},
        {"page_token": "forged"},
        {"since": "1d", "until": "2d"},
    ):
        response = _audit(api, **params)
        assert response.status_code == 400, (params, response.text)
        body = response.json()
        assert body["code"] == 3 and body["message"]


def test_only_admins_read_it(api: Api, services: Services, tenant: TenantFixture) -> None:
    _fill(services, tenant)
    for role in (Role.CONTRIBUTOR, Role.VIEWER):
        response = _audit(api.as_role(role))
        assert response.status_code == 403
        assert response.json()["code"] == 7


def test_another_tenant_is_not_found(api: Api, services: Services, tenant: TenantFixture) -> None:
    other = make_tenant(services)
    stranger = Api(api.base_url, other)  # admin of its own project
    try:
        response = _audit(stranger, tenant)
        assert response.status_code == 404
        assert response.json()["code"] == 5
    finally:
        stranger.close()
    assert _audit(api, other).status_code == 404
