"""The registry's image validation run task: endpoint and HMAC key, untracked-image policy."""

from __future__ import annotations

from fastapi import APIRouter, Request

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.links import public_base
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import RegenerateRunTaskHmacBody, UpdateRunTaskConfigBody
from packyard.errors import invalid

router = APIRouter(prefix=PACKER_BASE, tags=["runtasks"])

TASK_TYPES = ("validation",)
# Answers that carry the HMAC key are not kept by caches along the way.
_SECRET = {"Cache-Control": "no-store"}


# Declared before /runtasks/{task_type}, which would otherwise take "config".
@router.get("/runtasks/config", operation_id="PackerService_GetRunTaskConfig")
async def get_run_task_config(caller: CallerDep, svc: ServicesDep) -> JSONBody:
    behaviour = await run(svc, svc.runtasks.get_config, caller)
    return JSONBody({"on_untracked_image": behaviour.value})


@router.patch("/runtasks/config", operation_id="PackerService_UpdateRunTaskConfig")
async def update_run_task_config(
    body: UpdateRunTaskConfigBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    behaviour = await run(svc, svc.runtasks.update_config, caller, body.on_untracked_image)
    return JSONBody({"on_untracked_image": behaviour.value})


@router.patch("/runtasks/hmac", operation_id="PackerService_RegenerateTFCRunTaskHmacKey")
async def regenerate_run_task_hmac_key(
    caller: CallerDep, svc: ServicesDep, body: RegenerateRunTaskHmacBody | None = None
) -> JSONBody:
    access = await run(svc, svc.runtasks.regenerate_hmac, caller)
    return JSONBody({"hmac_key": access.hmac_key}, headers=_SECRET)


@router.get("/runtasks/{task_type}", operation_id="PackerService_GetRegistryTFCRunTaskAPI")
async def get_registry_run_task_api(
    task_type: str, request: Request, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    if task_type not in TASK_TYPES:
        raise invalid(
            f"Unknown run task type {task_type[:100]!r}: the only type is 'validation'.",
            field="task_type",
        )
    access = await run(svc, svc.runtasks.get_api, caller)
    # The configured public address, never the request's Host header.
    base = public_base(request.app.state.public_url, request.scope)
    return JSONBody(render.run_task_api(base, access.api_id, access.hmac_key), headers=_SECRET)
