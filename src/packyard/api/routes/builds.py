"""Builds: list, create, get, update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import CreateBuildBody, UpdateBuildBody
from packyard.domain.paging import MAX_PAGE_SIZE, PageRequest
from packyard.services.builds import ArtifactInput, BuildChanges
from packyard.store.versions import BUILD_SORT

router = APIRouter(prefix=PACKER_BASE, tags=["builds"])
# Packer reads one page of builds only: the default page holds every build.
BuildPage = Annotated[PageRequest, Depends(page_params(set(BUILD_SORT), MAX_PAGE_SIZE))]
BUILDS = "/buckets/{bucket_name}/versions/{fingerprint}/builds"


def _changes(body: CreateBuildBody | UpdateBuildBody) -> BuildChanges:
    return BuildChanges(
        status=body.status,
        platform=body.platform,
        packer_run_uuid=body.packer_run_uuid,
        artifacts=None
        if body.artifacts is None
        else [ArtifactInput(a.external_identifier, a.region) for a in body.artifacts],
        labels=body.labels,
        source_external_identifier=body.source_external_identifier,
        parent_version_id=body.parent_version_id,
        parent_channel_id=body.parent_channel_id,
        metadata=None if body.metadata is None else body.metadata.model_dump(),
    )


@router.get(BUILDS, operation_id="PackerService_ListBuilds")
async def list_builds(
    bucket_name: str, fingerprint: str, caller: CallerDep, svc: ServicesDep, page: BuildPage
) -> JSONBody:
    result = await run(svc, svc.builds.list_page, caller, bucket_name, fingerprint, page)
    return JSONBody(
        {
            "location": render.location(caller.organization_id, caller.project_id),
            "pagination": render.pagination(result),
            "builds": [render.build(b) for b in result.items],
        }
    )


@router.post(BUILDS, operation_id="PackerService_CreateBuild")
async def create_build(
    bucket_name: str,
    fingerprint: str,
    body: CreateBuildBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    b = await run(
        svc,
        svc.builds.create,
        caller,
        bucket_name,
        fingerprint,
        body.component_type,
        _changes(body),
    )
    return JSONBody({"build": render.build(b)})


@router.get(BUILDS + "/{build_id}", operation_id="PackerService_GetBuild")
async def get_build(
    bucket_name: str, fingerprint: str, build_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    build = await run(svc, svc.builds.get, caller, bucket_name, fingerprint, build_id)
    return JSONBody({"build": render.build(build)})


@router.patch(BUILDS + "/{build_id}", operation_id="PackerService_UpdateBuild")
async def update_build(
    bucket_name: str,
    fingerprint: str,
    build_id: str,
    body: UpdateBuildBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    b = await run(
        svc, svc.builds.update, caller, bucket_name, fingerprint, build_id, _changes(body)
    )
    return JSONBody({"build": render.build(b)})


@router.delete(BUILDS + "/{build_id}", operation_id="PackerService_DeleteBuild")
async def delete_build(
    bucket_name: str, fingerprint: str, build_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    await run(svc, svc.builds.delete, caller, bucket_name, fingerprint, build_id)
    return JSONBody({})
