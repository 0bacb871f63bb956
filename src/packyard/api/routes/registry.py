"""Registry: get, create, update, delete (one registry per project)."""

from __future__ import annotations

from fastapi import APIRouter

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import CreateRegistryBody, UpdateRegistryBody

router = APIRouter(prefix=PACKER_BASE, tags=["registry"])


@router.get("/registry", operation_id="PackerService_GetRegistry")
async def get_registry(caller: CallerDep, svc: ServicesDep) -> JSONBody:
    registry = await run(svc, svc.registry.get, caller)
    return JSONBody({"registry": render.registry(registry)})


@router.put("/registry", operation_id="PackerService_CreateRegistry")
async def create_registry(
    body: CreateRegistryBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    registry = await run(svc, svc.registry.create, caller, body.feature_tier)
    return JSONBody({"registry": render.registry(registry), "operation": None})


@router.patch("/registry", operation_id="PackerService_UpdateRegistry")
async def update_registry(
    body: UpdateRegistryBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    registry = await run(
        svc,
        svc.registry.update,
        caller,
        tier=body.feature_tier,
        activated=body.activated,
        update_mask=body.update_mask,
    )
    return JSONBody({"registry": render.registry(registry), "operation": None})


@router.delete("/registry", operation_id="PackerService_DeleteRegistry")
async def delete_registry(caller: CallerDep, svc: ServicesDep) -> JSONBody:
    registry = await run(svc, svc.registry.delete, caller)
    return JSONBody({"registry": render.registry(registry), "operation": None})
