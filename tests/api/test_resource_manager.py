"""Resource-manager 2019-12-10: the three GETs stock clients make."""

from __future__ import annotations

import uuid

from packyard.domain.enums import Role
from packyard.services.container import Services
from tests.support import swagger
from tests.support.factories import Api, assert_status, make_tenant
from tests.support.wire import ok

RM = "/resource-manager/2019-12-10"


def test_list_organizations(api: Api) -> None:
    body = ok(api.get(f"{RM}/organizations"), "OrganizationService_List", spec=swagger.RM_SPEC)
    assert [o["id"] for o in body["organizations"]] == [api.tenant.organization_id]
    org = body["organizations"][0]
    assert org["state"] == "ACTIVE"
    assert org["created_at"]
    uuid.UUID(org["id"])
    assert body["pagination"]["next_page_token"] == ""


def test_list_projects_of_organization(api: Api) -> None:
    org = api.tenant.organization_id
    body = ok(
        api.get(f"{RM}/projects?scope.type=ORGANIZATION&scope.id={org}"),
        "ProjectService_List",
        spec=swagger.RM_SPEC,
    )
    assert [p["id"] for p in body["projects"]] == [api.tenant.project_id]
    project = body["projects"][0]
    assert project["parent"] == {"type": "ORGANIZATION", "id": org}
    assert project["created_at"]
    uuid.UUID(project["id"])
    # scope.type may be left out
    ok(api.get(f"{RM}/projects?scope.id={org}"), "ProjectService_List", spec=swagger.RM_SPEC)


def test_get_project_with_parent(api: Api) -> None:
    t = api.tenant
    body = ok(api.get(f"{RM}/projects/{t.project_id}"), "ProjectService_Get", spec=swagger.RM_SPEC)
    assert body["project"]["id"] == t.project_id
    assert body["project"]["parent"] == {"type": "ORGANIZATION", "id": t.organization_id}


def test_every_role_can_read(api: Api) -> None:
    for role in Role:
        client = api.as_role(role)
        ok(
            client.get(f"{RM}/projects/{api.tenant.project_id}"),
            "ProjectService_Get",
            spec=swagger.RM_SPEC,
        )
        client.close()


def test_project_errors(api: Api, services: Services) -> None:
    assert_status(api.get(f"{RM}/projects"), 400, 3)
    assert_status(api.get(f"{RM}/projects?scope.type=PROJECT&scope.id=x"), 400, 3)
    assert_status(api.get(f"{RM}/projects/{uuid.uuid4()}"), 404, 5)
    other = make_tenant(services)
    # another tenant's project and organization are invisible
    assert_status(api.get(f"{RM}/projects/{other.project_id}"), 404, 5)
    listing = ok(
        api.get(f"{RM}/projects?scope.type=ORGANIZATION&scope.id={other.organization_id}"),
        "ProjectService_List",
        spec=swagger.RM_SPEC,
    )
    assert listing["projects"] == []


def test_resource_manager_needs_a_token(api: Api) -> None:
    for path in ("/organizations", "/projects?scope.id=x", f"/projects/{api.tenant.project_id}"):
        assert_status(api.http.get(RM + path), 401, 16)
