"""Registry: get, create, update, delete (one registry per project)."""

from __future__ import annotations

from fastapi import APIRouter

from packyard.api import render
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import CreateRegistryBody, UpdateRegistryBody

router = APIRouter(prefix=PACKER_BASE, tags=["registry"])


@router.get("/registry", operation_id="PackerService_GetRegistry")
def get_registry(caller: CallerDep, svc: ServicesDep) -> JSONBody:
    return JSONBody({"registry": render.registry(svc.registry.get(caller))})


@router.put("/registry", operation_id="PackerService_CreateRegistry")
def create_registry(body: CreateRegistryBody, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    registry = svc.registry.create(caller, body.feature_tier)
    return JSONBody({"registry": render.registry(registry), "operation": None})


@router.patch("/registry", operation_id="PackerService_UpdateRegistry")
def update_registry(body: UpdateRegistryBody, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    registry = svc.registry.update(
        caller, tier=body.feature_tier, activated=body.activated, update_mask=body.update_mask
    )
    return JSONBody({"registry": render.registry(registry), "operation": None})


@router.delete("/registry", operation_id="PackerService_DeleteRegistry")
def delete_registry(caller: CallerDep, svc: ServicesDep) -> JSONBody:
    return JSONBody({"registry": render.registry(svc.registry.delete(caller)), "operation": None})
