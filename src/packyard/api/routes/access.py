"""Roles on a project and grants on its buckets (Packyard's own API, ``packyard access``).

A member is named by principal id or client id (service principals) or by user id or
email (console users)."""

from __future__ import annotations

from fastapi import APIRouter

from packyard.api import render
from packyard.api.admin_wire import GrantAccessBody
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKYARD_BASE
from packyard.errors import invalid

router = APIRouter(prefix=PACKYARD_BASE, tags=["access"])


@router.get("/access", operation_id="Packyard_ListAccess")
async def list_access(
    organization_id: str,
    project_id: str,
    caller: CallerDep,
    svc: ServicesDep,
    bucket: str | None = None,
) -> JSONBody:
    found = await run(svc, svc.access.list, caller, organization_id, project_id, bucket or None)
    return JSONBody({"access": [render.access_entry(e) for e in found]})


@router.put("/access/{member}", operation_id="Packyard_GrantAccess")
async def grant_access(
    organization_id: str,
    project_id: str,
    member: str,
    body: GrantAccessBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    if body.role is None:
        raise invalid("role is required: viewer, contributor or admin.", field="role")
    entry = await run(
        svc,
        svc.access.grant,
        caller,
        organization_id,
        project_id,
        member,
        body.role,
        body.bucket or None,
    )
    return JSONBody({"access": render.access_entry(entry)})


@router.delete("/access/{member}", operation_id="Packyard_RevokeAccess")
async def revoke_access(
    organization_id: str,
    project_id: str,
    member: str,
    caller: CallerDep,
    svc: ServicesDep,
    bucket: str | None = None,
) -> JSONBody:
    await run(svc, svc.access.revoke, caller, organization_id, project_id, member, bucket or None)
    return JSONBody({})
