"""Channels: list, create, get, update, delete, assign (promote) and history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import AssignChannelVersionBody, CreateChannelBody, UpdateChannelBody
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow
from packyard.store.channels import HISTORY_SORT

router = APIRouter(prefix=PACKER_BASE, tags=["channels"])
HistoryPage = Annotated[PageRequest, Depends(page_params(set(HISTORY_SORT)))]
CHANNELS = "/buckets/{bucket_name}/channels"


@router.get(CHANNELS, operation_id="PackerService_ListChannels")
async def list_channels(bucket_name: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    items = await run(svc, svc.channels.list_all, caller, bucket_name)
    now = utcnow()
    org, project = caller.organization_id, caller.project_id
    return JSONBody({"channels": [render.channel(c, org, project, now) for c in items]})


@router.post(CHANNELS, operation_id="PackerService_CreateChannel")
async def create_channel(
    bucket_name: str, body: CreateChannelBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    c = await run(
        svc,
        svc.channels.create,
        caller,
        bucket_name,
        body.name,
        body.version_fingerprint or None,
        bool(body.restricted),
    )
    org, project = caller.organization_id, caller.project_id
    return JSONBody({"channel": render.channel(c, org, project, utcnow())})


@router.post(CHANNELS + "/assign", operation_id="PackerService_AssignChannelVersion")
async def assign_channel_version(
    bucket_name: str, body: AssignChannelVersionBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    result = await run(
        svc, svc.channels.promote, caller, bucket_name, body.source_channel, body.target_channel
    )
    org, project, now = caller.organization_id, caller.project_id, utcnow()
    v = result.version
    return JSONBody(
        {
            "fingerprint": v.fingerprint if v else "",
            "version": render.version(v, org, project, now) if v else None,
            "source_channel": render.channel(result.source, org, project, now),
            "target_channel": render.channel(result.target, org, project, now),
        }
    )


@router.get(CHANNELS + "/{channel_name}", operation_id="PackerService_GetChannel")
async def get_channel(
    bucket_name: str, channel_name: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    c = await run(svc, svc.channels.get, caller, bucket_name, channel_name)
    org, project = caller.organization_id, caller.project_id
    return JSONBody({"channel": render.channel(c, org, project, utcnow())})


@router.patch(CHANNELS + "/{channel_name}", operation_id="PackerService_UpdateChannel")
async def update_channel(
    bucket_name: str,
    channel_name: str,
    body: UpdateChannelBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    c = await run(
        svc,
        svc.channels.update,
        caller,
        bucket_name,
        channel_name,
        fingerprint=body.version_fingerprint or None,
        restricted=body.restricted,
        update_mask=body.update_mask,
    )
    org, project = caller.organization_id, caller.project_id
    return JSONBody({"channel": render.channel(c, org, project, utcnow())})


@router.delete(CHANNELS + "/{channel_name}", operation_id="PackerService_DeleteChannel")
async def delete_channel(
    bucket_name: str, channel_name: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    await run(svc, svc.channels.delete, caller, bucket_name, channel_name)
    return JSONBody({})


@router.get(
    CHANNELS + "/{channel_name}/history", operation_id="PackerService_ListChannelAssignmentHistory"
)
async def list_channel_history(
    bucket_name: str,
    channel_name: str,
    caller: CallerDep,
    svc: ServicesDep,
    page: HistoryPage,
) -> JSONBody:
    result = await run(svc, svc.channels.history, caller, bucket_name, channel_name, page)
    org, project, now = caller.organization_id, caller.project_id, utcnow()
    return JSONBody(
        {
            "history": [
                {
                    "version": render.version(e.version, org, project, now) if e.version else None,
                    "author_id": e.assignment.author_id,
                    "assigned_at": render.ts(e.assignment.assigned_at),
                }
                for e in result.items
            ],
            "count": result.total or 0,
            "pagination": render.pagination(result),
        }
    )
