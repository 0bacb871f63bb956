"""The three resource-manager 2019-12-10 reads clients make.

Every other resource-manager (and IAM) operation answers 501/12 like any unknown
route (:mod:`packyard.api.errors`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import PrincipalDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.errors import ApiError, Code

router = APIRouter(prefix="/resource-manager/2019-12-10", tags=["resource manager"])
_EMPTY_PAGE = {"next_page_token": "", "previous_page_token": ""}


@router.get("/organizations", operation_id="OrganizationService_List")
async def list_organizations(principal: PrincipalDep, svc: ServicesDep) -> JSONBody:
    orgs = await run(svc, svc.tenancy.list_organizations, principal)
    return JSONBody(
        {"organizations": [render.organization(o) for o in orgs], "pagination": _EMPTY_PAGE}
    )


@router.get("/projects", operation_id="ProjectService_List")
async def list_projects(
    principal: PrincipalDep,
    svc: ServicesDep,
    scope_type: Annotated[str | None, Query(alias="scope.type")] = None,
    scope_id: Annotated[str | None, Query(alias="scope.id")] = None,
) -> JSONBody:
    projects = await run(svc, svc.tenancy.list_projects, principal, scope_type, scope_id)
    return JSONBody({"projects": [render.project(p) for p in projects], "pagination": _EMPTY_PAGE})


@router.get(
    "/projects/count", operation_id="ProjectService_GetProjectsCount", include_in_schema=False
)
async def count_projects() -> None:
    # Matched before ProjectService_Get, which would answer "no project named count" (404).
    raise ApiError(
        Code.UNIMPLEMENTED, "GET /resource-manager/2019-12-10/projects/count is not implemented."
    )


@router.get("/projects/{project_id}", operation_id="ProjectService_Get")
async def get_project(project_id: str, principal: PrincipalDep, svc: ServicesDep) -> JSONBody:
    project = await run(svc, svc.tenancy.get_project, principal, project_id)
    return JSONBody({"project": render.project(project)})
