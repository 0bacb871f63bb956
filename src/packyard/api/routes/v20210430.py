"""The HCP Packer 2021-04-30 "images/iterations" API, on the same services and data as
2023-01-01 (see :mod:`packyard.api.render_20210430` for the mapping).

Packer 1.7.7 to 1.10.0 push through it; Packer's deprecated ``hcp-packer-iteration`` and
``hcp-packer-image`` data sources and terraform-provider-hcp before 0.84 read through it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from packyard.api import render
from packyard.api import render_20210430 as r21
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.render_20210430 import (
    ChannelBody,
    CreateBucketBody,
    CreateBuildBody,
    CreateIterationBody,
    UpdateBucketBody,
    UpdateBuildBody,
    UpdateIterationBody,
)
from packyard.api.responses import JSONBody
from packyard.api.routes import runtasks
from packyard.domain.models import Caller
from packyard.domain.paging import MAX_PAGE_SIZE, PageRequest
from packyard.domain.rules import is_unset_time, utcnow
from packyard.errors import ApiError, Code, invalid
from packyard.services.container import Services
from packyard.services.revocation import RevocationRequest
from packyard.store.buckets import BUCKET_SORT
from packyard.store.channels import HISTORY_SORT
from packyard.store.versions import BUILD_SORT, VERSION_SORT

BASE = "/packer/2021-04-30/organizations/{organization_id}/projects/{project_id}"
# The deprecated API serves old clients; HCP's own 2021-04-30 swagger documents it, the
# reference at /docs only the current one.
router = APIRouter(prefix=BASE, tags=["2021-04-30"], include_in_schema=False)
BucketPage = Annotated[PageRequest, Depends(page_params(set(BUCKET_SORT)))]
VersionPage = Annotated[PageRequest, Depends(page_params(set(VERSION_SORT)))]
BuildPage = Annotated[PageRequest, Depends(page_params(set(BUILD_SORT), MAX_PAGE_SIZE))]
HistoryPage = Annotated[PageRequest, Depends(page_params(set(HISTORY_SORT)))]
AncestryPage = Annotated[PageRequest, Depends(page_params(set()))]


async def _fingerprint(
    svc: Services,
    caller: Caller,
    bucket: str,
    *,
    iteration_id: str | None = None,
    fingerprint: str | None = None,
    incremental_version: int | None = None,
) -> str:
    """The fingerprint of the iteration named by one of its three identifiers."""
    if fingerprint:
        return fingerprint
    _, found = await run(
        svc,
        svc.versions.locate,
        caller,
        bucket,
        version_id=iteration_id or None,
        number=incremental_version or None,
    )
    return found


async def _channel_target(
    svc: Services, caller: Caller, bucket: str, body: ChannelBody, idents: list[str]
) -> str | None:
    """The fingerprint the identifiers of a channel body name (all must agree)."""
    found: set[str | None] = set()
    for name in idents:
        if name == "none" or not getattr(body, name):
            found.add(None)
            continue
        found.add(await _fingerprint(svc, caller, bucket, **{name: getattr(body, name)}))
    if len(found) > 1:
        raise invalid("The iteration identifiers name different iterations.", field="mask")
    return found.pop() if found else None


# --- registry --------------------------------------------------------------------------


@router.get("/registry", operation_id="PackerService_GetRegistry_20210430")
async def get_registry(caller: CallerDep, svc: ServicesDep) -> JSONBody:
    return JSONBody({"registry": r21.registry(await run(svc, svc.registry.get, caller))})


def _unimplemented(operation: str) -> None:
    raise ApiError(Code.UNIMPLEMENTED, r21.unimplemented_message(operation))


@router.put("/registry", operation_id="PackerService_CreateRegistry_20210430")
async def create_registry(caller: CallerDep) -> None:
    _unimplemented("CreateRegistry")


@router.patch("/registry", operation_id="PackerService_UpdateRegistry_20210430")
async def update_registry(caller: CallerDep) -> None:
    _unimplemented("UpdateRegistry")


@router.delete("/registry", operation_id="PackerService_DeleteRegistry_20210430")
async def delete_registry(caller: CallerDep) -> None:
    _unimplemented("DeleteRegistry")


# --- buckets ("images") ----------------------------------------------------------------


@router.get("/images", operation_id="PackerService_ListBuckets_20210430")
async def list_buckets(caller: CallerDep, svc: ServicesDep, page: BucketPage) -> JSONBody:
    result = await run(svc, svc.buckets.list_page, caller, page)
    org = caller.organization_id
    return JSONBody(
        {
            "buckets": [r21.bucket(b, org) for b in result.items],
            "pagination": r21.pagination(result),
        }
    )


@router.put("/images", operation_id="PackerService_CreateBucket_20210430")
async def create_bucket(body: CreateBucketBody, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    b = await run(svc, svc.buckets.create, caller, body.bucket_slug, body.description, body.labels)
    return JSONBody({"bucket": r21.bucket(b, caller.organization_id)})


@router.get("/images/{bucket_slug}", operation_id="PackerService_GetBucket_20210430")
async def get_bucket(bucket_slug: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    b = await run(svc, svc.buckets.get, caller, bucket_slug)
    return JSONBody({"bucket": r21.bucket(b, caller.organization_id)})


@router.patch("/images/{bucket_slug}", operation_id="PackerService_UpdateBucket_20210430")
async def update_bucket(
    bucket_slug: str, body: UpdateBucketBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    b = await run(svc, svc.buckets.update, caller, bucket_slug, body.description, body.labels)
    return JSONBody({"bucket": r21.bucket(b, caller.organization_id)})


@router.delete("/images/{bucket_slug}", operation_id="PackerService_DeleteBucket_20210430")
async def delete_bucket(bucket_slug: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    await run(svc, svc.buckets.delete, caller, bucket_slug)
    return JSONBody({})


@router.get(
    "/images/{bucket_slug}/ancestry", operation_id="PackerService_ListBucketAncestry_20210430"
)
async def list_bucket_ancestry(
    bucket_slug: str,
    caller: CallerDep,
    svc: ServicesDep,
    page: AncestryPage,
    type: Annotated[str | None, Query()] = None,
    channel: Annotated[str | None, Query()] = None,
    incremental_version: Annotated[int | None, Query()] = None,
    iteration_id: Annotated[str | None, Query()] = None,
    fingerprint: Annotated[str | None, Query()] = None,
) -> JSONBody:
    version = None
    if iteration_id or fingerprint or incremental_version:
        version = await _fingerprint(
            svc,
            caller,
            bucket_slug,
            iteration_id=iteration_id,
            fingerprint=fingerprint,
            incremental_version=incremental_version,
        )
    result = await run(
        svc,
        svc.ancestry.list_page,
        caller,
        bucket_slug,
        ancestry_type=type,
        version_fingerprint=version,
        channel_name=channel or None,
        page=page,
    )
    return JSONBody(
        {
            "relations": [r21.ancestry_relation(r) for r in result.items],
            "total_count": result.total or 0,
            "pagination": r21.pagination(result),
        }
    )


# --- channels --------------------------------------------------------------------------

CHANNELS = "/images/{bucket_slug}/channels"


@router.get(CHANNELS, operation_id="PackerService_ListChannels_20210430")
async def list_channels(bucket_slug: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    items = await run(svc, svc.channels.list_all, caller, bucket_slug)
    org, project = caller.organization_id, caller.project_id
    return JSONBody({"channels": [r21.channel(c, org, project) for c in items]})


@router.post(CHANNELS, operation_id="PackerService_CreateChannel_20210430")
async def create_channel(
    bucket_slug: str, body: ChannelBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    target = await _channel_target(svc, caller, bucket_slug, body, r21.channel_mask(body)[0])
    c = await run(
        svc,
        svc.channels.create,
        caller,
        bucket_slug,
        body.slug,
        target,
        bool(r21.restricted(body.restriction)),
    )
    return JSONBody({"channel": r21.channel(c, caller.organization_id, caller.project_id)})


@router.get(CHANNELS + "/{slug}", operation_id="PackerService_GetChannel_20210430")
async def get_channel(bucket_slug: str, slug: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    c = await run(svc, svc.channels.get, caller, bucket_slug, slug)
    return JSONBody({"channel": r21.channel(c, caller.organization_id, caller.project_id)})


@router.patch(CHANNELS + "/{slug}", operation_id="PackerService_UpdateChannel_20210430")
async def update_channel(
    bucket_slug: str, slug: str, body: ChannelBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    idents, restriction = r21.channel_mask(body)
    mask = (["version_fingerprint"] if idents else []) + (["restricted"] if restriction else [])
    c = await run(
        svc,
        svc.channels.update,
        caller,
        bucket_slug,
        slug,
        fingerprint=await _channel_target(svc, caller, bucket_slug, body, idents),
        restricted=r21.restricted(body.restriction),
        update_mask=",".join(mask),
    )
    return JSONBody({"channel": r21.channel(c, caller.organization_id, caller.project_id)})


@router.delete(CHANNELS + "/{slug}", operation_id="PackerService_DeleteChannel_20210430")
async def delete_channel(
    bucket_slug: str, slug: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    await run(svc, svc.channels.delete, caller, bucket_slug, slug)
    return JSONBody({})


@router.get(CHANNELS + "/{slug}/history", operation_id="PackerService_ListChannelHistory_20210430")
async def list_channel_history(
    bucket_slug: str, slug: str, caller: CallerDep, svc: ServicesDep, page: HistoryPage
) -> JSONBody:
    result = await run(svc, svc.channels.history, caller, bucket_slug, slug, page)
    org, project, now = caller.organization_id, caller.project_id, utcnow()
    history = [
        {
            "iteration": r21.history_iteration(e.version, org, project, now) if e.version else None,
            "author_id": e.assignment.author_id,
            "promoted_at": render.ts(e.assignment.assigned_at),
        }
        for e in result.items
    ]
    return JSONBody(
        {"history": history, "count": result.total or 0, "pagination": r21.pagination(result)}
    )


# --- iterations --------------------------------------------------------------------------


@router.get("/images/{bucket_slug}/iteration", operation_id="PackerService_GetIteration_20210430")
async def get_iteration(
    bucket_slug: str,
    caller: CallerDep,
    svc: ServicesDep,
    iteration_id: Annotated[str | None, Query()] = None,
    fingerprint: Annotated[str | None, Query()] = None,
    incremental_version: Annotated[int | None, Query()] = None,
) -> JSONBody:
    r21.one_identifier(iteration_id, fingerprint, incremental_version)
    fp = await _fingerprint(
        svc,
        caller,
        bucket_slug,
        iteration_id=iteration_id,
        fingerprint=fingerprint,
        incremental_version=incremental_version,
    )
    v = await run(svc, svc.versions.get, caller, bucket_slug, fp)
    return JSONBody({"iteration": r21.iteration(v, caller.organization_id, caller.project_id)})


@router.get(
    "/images/{bucket_slug}/iterations", operation_id="PackerService_ListIterations_20210430"
)
async def list_iterations(
    bucket_slug: str, caller: CallerDep, svc: ServicesDep, page: VersionPage
) -> JSONBody:
    result = await run(svc, svc.versions.list_page, caller, bucket_slug, page)
    org, project = caller.organization_id, caller.project_id
    return JSONBody(
        {
            "iterations": [r21.iteration_for_list(v, org, project) for v in result.items],
            "pagination": r21.pagination(result),
        }
    )


@router.post(
    "/images/{bucket_slug}/iterations", operation_id="PackerService_CreateIteration_20210430"
)
async def create_iteration(
    bucket_slug: str, body: CreateIterationBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    v = await run(
        svc, svc.versions.create, caller, bucket_slug, body.fingerprint, body.template_type
    )
    return JSONBody({"iteration": r21.iteration(v, caller.organization_id, caller.project_id)})


@router.patch("/iterations/{iteration_id}", operation_id="PackerService_UpdateIteration_20210430")
async def update_iteration(
    iteration_id: str, body: UpdateIterationBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    bucket, fp = await run(
        svc, svc.versions.locate, caller, body.bucket_slug or None, version_id=iteration_id
    )
    request = RevocationRequest(
        revoke_at=None if is_unset_time(body.revoke_at) else body.revoke_at,
        revoke_in=body.revoke_in or None,
        message=body.revocation_message or "",
        restore=bool(body.restore),
        skip_descendants=bool(body.skip_descendants_revocation),
        disable_rollback=not body.rollback_channels,
    )
    if body.complete:
        if request.touches_revocation:
            raise invalid("complete cannot be combined with revocation fields.", field="complete")
        v = await run(svc, svc.versions.force_complete, caller, bucket, fp)
    else:
        v = await run(svc, svc.revocation.update, caller, bucket, fp, request)
    org, project = caller.organization_id, caller.project_id
    return JSONBody({"iteration": r21.iteration(v, org, project), "operation": None})


@router.delete("/iterations/{iteration_id}", operation_id="PackerService_DeleteIteration_20210430")
async def delete_iteration(
    iteration_id: str,
    caller: CallerDep,
    svc: ServicesDep,
    bucket_slug: Annotated[str | None, Query()] = None,
    rollback_channels: Annotated[bool, Query()] = False,
) -> JSONBody:
    bucket, fp = await run(
        svc, svc.versions.locate, caller, bucket_slug or None, version_id=iteration_id
    )
    await run(svc, svc.versions.delete, caller, bucket, fp, rollback_channels=rollback_channels)
    return JSONBody({})


# --- builds ------------------------------------------------------------------------------


@router.post(
    "/images/{bucket_slug}/iterations/{iteration_id}",
    operation_id="PackerService_CreateBuild_20210430",
)
async def create_build(
    bucket_slug: str, iteration_id: str, body: CreateBuildBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    fp = await _fingerprint(svc, caller, bucket_slug, iteration_id=iteration_id)
    fields = body.build
    component = fields.component_type if fields else None
    b = await run(
        svc, svc.builds.create, caller, bucket_slug, fp, component, r21.build_changes(fields)
    )
    return JSONBody({"build": r21.build(b)})


@router.get(
    "/images/{bucket_slug}/iterations/{iteration_id}/builds",
    operation_id="PackerService_ListBuilds_20210430",
)
async def list_builds(
    bucket_slug: str, iteration_id: str, caller: CallerDep, svc: ServicesDep, page: BuildPage
) -> JSONBody:
    fp = await _fingerprint(svc, caller, bucket_slug, iteration_id=iteration_id)
    result = await run(svc, svc.builds.list_page, caller, bucket_slug, fp, page)
    return JSONBody(
        {
            "location": r21.location(caller.organization_id, caller.project_id),
            "pagination": r21.pagination(result),
            "builds": [r21.build(b) for b in result.items],
        }
    )


@router.get("/builds/{build_id}", operation_id="PackerService_GetBuild_20210430")
async def get_build(build_id: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    bucket, fp = await run(svc, svc.builds.locate, caller, build_id)
    b = await run(svc, svc.builds.get, caller, bucket, fp, build_id)
    return JSONBody({"build": r21.build(b)})


@router.patch("/builds/{build_id}", operation_id="PackerService_UpdateBuild_20210430")
async def update_build(
    build_id: str, body: UpdateBuildBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    bucket, fp = await run(svc, svc.builds.locate, caller, build_id)
    changes = r21.build_changes(body.updates)
    b = await run(svc, svc.builds.update, caller, bucket, fp, build_id, changes)
    return JSONBody({"build": r21.build(b)})


@router.delete("/builds/{build_id}", operation_id="PackerService_DeleteBuild_20210430")
async def delete_build(build_id: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    bucket, fp = await run(svc, svc.builds.locate, caller, build_id)
    await run(svc, svc.builds.delete, caller, bucket, fp, build_id)
    return JSONBody({})


# --- run tasks: the 2023-01-01 handlers, at this API's paths --------------------------------

router.add_api_route(
    "/runtasks/hmac",
    runtasks.regenerate_run_task_hmac_key,
    methods=["PATCH"],
    operation_id="PackerService_RegenerateTFCRunTaskHmacKey_20210430",
)
router.add_api_route(
    "/runtasks/{task_type}",
    runtasks.get_registry_run_task_api,
    methods=["GET"],
    operation_id="PackerService_GetRegistryTFCRunTaskAPI_20210430",
)
