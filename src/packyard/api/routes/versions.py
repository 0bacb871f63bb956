"""Versions: list, create, get, update (complete / revoke / restore), delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import CreateVersionBody, UpdateVersionBody
from packyard.domain.paging import PageRequest
from packyard.domain.rules import is_unset_time, utcnow
from packyard.errors import invalid
from packyard.services.revocation import RevocationRequest
from packyard.store.versions import VERSION_SORT

router = APIRouter(prefix=PACKER_BASE, tags=["versions"])
VersionPage = Annotated[PageRequest, Depends(page_params(set(VERSION_SORT)))]


@router.get("/buckets/{bucket_name}/versions", operation_id="PackerService_ListVersions")
async def list_versions(
    bucket_name: str, caller: CallerDep, svc: ServicesDep, page: VersionPage
) -> JSONBody:
    result = await run(svc, svc.versions.list_page, caller, bucket_name, page)
    now = utcnow()
    org, project = caller.organization_id, caller.project_id
    return JSONBody(
        {
            "versions": [render.version(v, org, project, now) for v in result.items],
            "pagination": render.pagination(result),
        }
    )


@router.post("/buckets/{bucket_name}/versions", operation_id="PackerService_CreateVersion")
async def create_version(
    bucket_name: str, body: CreateVersionBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    v = await run(
        svc, svc.versions.create, caller, bucket_name, body.fingerprint, body.template_type
    )
    return JSONBody(
        {"version": render.version(v, caller.organization_id, caller.project_id, utcnow())}
    )


@router.get(
    "/buckets/{bucket_name}/versions/{fingerprint}", operation_id="PackerService_GetVersion"
)
async def get_version(
    bucket_name: str, fingerprint: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    v = await run(svc, svc.versions.get, caller, bucket_name, fingerprint)
    return JSONBody(
        {"version": render.version(v, caller.organization_id, caller.project_id, utcnow())}
    )


@router.patch(
    "/buckets/{bucket_name}/versions/{fingerprint}", operation_id="PackerService_UpdateVersion"
)
async def update_version(
    bucket_name: str,
    fingerprint: str,
    body: UpdateVersionBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    revoke_at = None if is_unset_time(body.revoke_at) else body.revoke_at
    request = RevocationRequest(
        revoke_at=revoke_at,
        revoke_in=body.revoke_in or None,
        message=body.revocation_message or "",
        restore=bool(body.restore),
        skip_descendants=bool(body.skip_descendants_revocation),
        disable_rollback=bool(body.disable_rollback_channels),
    )
    if body.complete:
        if request.touches_revocation:
            raise invalid("complete cannot be combined with revocation fields.", field="complete")
        v = await run(svc, svc.versions.force_complete, caller, bucket_name, fingerprint)
    else:
        v = await run(svc, svc.revocation.update, caller, bucket_name, fingerprint, request)
    return JSONBody(
        {
            "version": render.version(v, caller.organization_id, caller.project_id, utcnow()),
            "operation": None,
        }
    )


@router.delete(
    "/buckets/{bucket_name}/versions/{fingerprint}", operation_id="PackerService_DeleteVersion"
)
async def delete_version(
    bucket_name: str,
    fingerprint: str,
    caller: CallerDep,
    svc: ServicesDep,
    rollback_channels: Annotated[bool, Query()] = False,
) -> JSONBody:
    await run(
        svc,
        svc.versions.delete,
        caller,
        bucket_name,
        fingerprint,
        rollback_channels=rollback_channels,
    )
    return JSONBody({})
