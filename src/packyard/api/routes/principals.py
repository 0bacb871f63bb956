"""Service principals of a project, managed by the project's admins (Packyard's own API)."""

from __future__ import annotations

from fastapi import APIRouter

from packyard.api import render
from packyard.api.admin_wire import CreatePrincipalBody, RotateSecretBody, UpdatePrincipalBody
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKYARD_BASE
from packyard.errors import invalid
from packyard.services.principals import IssuedSecret

router = APIRouter(prefix=PACKYARD_BASE, tags=["principals"])


@router.get("/principals", operation_id="Packyard_ListPrincipals")
async def list_principals(
    organization_id: str, project_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    found = await run(svc, svc.principals.list, caller, organization_id, project_id)
    return JSONBody({"principals": [render.principal(p) for p in found]})


@router.post("/principals", operation_id="Packyard_CreatePrincipal")
async def create_principal(
    organization_id: str,
    project_id: str,
    body: CreatePrincipalBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    if body.role is None:
        raise invalid("role is required: viewer, contributor or admin.", field="role")
    issued = await run(
        svc,
        svc.principals.create,
        caller,
        organization_id,
        project_id,
        name=body.name or "",
        role=body.role,
    )
    return _with_secret(issued)


@router.get("/principals/{principal}", operation_id="Packyard_GetPrincipal")
async def get_principal(
    organization_id: str, project_id: str, principal: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    record = await run(svc, svc.principals.get, caller, organization_id, project_id, principal)
    return JSONBody({"principal": render.principal(record)})


@router.patch("/principals/{principal}", operation_id="Packyard_UpdatePrincipal")
async def update_principal(
    organization_id: str,
    project_id: str,
    principal: str,
    body: UpdatePrincipalBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    record = await run(
        svc,
        svc.principals.update,
        caller,
        organization_id,
        project_id,
        principal,
        role=body.role,
        disabled=body.disabled,
    )
    return JSONBody({"principal": render.principal(record)})


@router.post("/principals/{principal}/rotate-secret", operation_id="Packyard_RotatePrincipalSecret")
async def rotate_principal_secret(
    organization_id: str,
    project_id: str,
    principal: str,
    caller: CallerDep,
    svc: ServicesDep,
    body: RotateSecretBody | None = None,
) -> JSONBody:
    issued = await run(
        svc,
        svc.principals.rotate_secret,
        caller,
        organization_id,
        project_id,
        principal,
        revoke_tokens=bool(body and body.revoke_tokens),
    )
    return _with_secret(issued)


@router.delete("/principals/{principal}", operation_id="Packyard_DeletePrincipal")
async def delete_principal(
    organization_id: str, project_id: str, principal: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    await run(svc, svc.principals.delete, caller, organization_id, project_id, principal)
    return JSONBody({})


def _with_secret(issued: IssuedSecret) -> JSONBody:
    return JSONBody(
        {"principal": render.principal(issued.principal), "client_secret": issued.client_secret},
        headers={"Cache-Control": "no-store"},
    )
