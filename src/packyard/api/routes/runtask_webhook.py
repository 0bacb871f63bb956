"""The endpoint HCP Terraform and Terraform Enterprise call for the image validation run task
(``api_url`` of GetRegistryTFCRunTaskAPI). It takes no bearer token: the request's HMAC
signature authenticates it (:mod:`packyard.services.runtask_requests`)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from packyard.api.calls import run
from packyard.api.deps import ServicesDep
from packyard.api.links import public_base
from packyard.api.responses import JSONBody

router = APIRouter(tags=["runtasks"])
RUN_TASK_PATH = "/packyard/runtasks/{api_id}"
SIGNATURE_HEADER = "x-tfc-task-signature"


@router.post(RUN_TASK_PATH, operation_id="Packyard_RunTaskRequest", include_in_schema=False)
async def run_task_request(api_id: str, request: Request, svc: ServicesDep) -> JSONBody:
    target = await run(svc, svc.runtask_intake.target, api_id)  # 404 before reading the body
    body = await request.body()
    signature = request.headers.get(SIGNATURE_HEADER, "")
    link_base = public_base(request.app.state.public_url, request.scope)
    await run(svc, svc.runtask_intake.accept, target, body, signature, link_base)
    return JSONBody({})
