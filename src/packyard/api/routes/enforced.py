"""Enforced provisioner blocks (HCP Packer 2023-01-01): blocks, versions, bucket links,
and the one call Packer makes on every build (``GetEnforcedBlocksByBucket``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import Body
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow

router = APIRouter(prefix=PACKER_BASE, tags=["enforced blocks"])
BLOCKS = "/enforced_blocks"
BLOCK = BLOCKS + "/{enforced_block_id}"
VERSION = BLOCK + "/versions/{enforced_block_version_id}"
ListPage = Annotated[PageRequest, Depends(page_params({"name"}))]


class CreateEnforcedBlockBody(Body):
    name: str | None = None
    template_type: str | None = None
    block_content: str | None = None
    additional_description: str | None = None
    labels: dict[str, str] | None = None
    version: str | None = None


class UpdateEnforcedBlockBody(Body):
    name: str | None = None
    labels: dict[str, str] | None = None
    update_mask: str | None = None


class CreateEnforcedBlockVersionBody(Body):
    version: str | None = None
    template_type: str | None = None
    block_content: str | None = None
    additional_description: str | None = None


class UpdateEnforcedBlockVersionBody(Body):
    additional_description: str | None = None
    update_mask: str | None = None


class ManageEnforcedBlockLinkedBucketsBody(Body):
    # hcp-sdk-go sends ``null`` for an empty list (no omitempty): the same as [].
    bucket_names: list[str] | None = None


# Declared before the routes with a block id: `/enforced_blocks/bucket/versions` is the
# blocks of bucket "versions", not the versions of block "bucket".
@router.get(
    BLOCKS + "/bucket/{bucket_name}", operation_id="PackerService_GetEnforcedBlocksByBucket"
)
async def get_enforced_blocks_by_bucket(
    bucket_name: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    found = await run(svc, svc.enforced.for_bucket, caller, bucket_name)
    return JSONBody(
        {"enforced_block_detail": [render.enforced_block_detail(b, v) for b, v in found]}
    )


@router.get(BLOCKS, operation_id="PackerService_ListEnforcedBlocks")
async def list_enforced_blocks(caller: CallerDep, svc: ServicesDep, page: ListPage) -> JSONBody:
    # The response has no pagination: every block is listed, in the order asked for.
    descending = any(k.descending for k in page.order_by)
    items = await run(svc, svc.enforced.list_all, caller, descending=descending)
    org = caller.organization_id
    return JSONBody({"enforced_blocks": [render.enforced_block(b, org) for b in items]})


@router.put(BLOCKS, operation_id="PackerService_CreateEnforcedBlock")
async def create_enforced_block(
    body: CreateEnforcedBlockBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    block = await run(
        svc,
        svc.enforced.create,
        caller,
        name=body.name,
        template_type_name=body.template_type,
        block_content=body.block_content,
        additional_description=body.additional_description,
        labels=body.labels,
        version=body.version,
    )
    org = caller.organization_id
    return JSONBody({"enforced_block": render.enforced_block(block, org, with_latest=True)})


@router.get(BLOCK, operation_id="PackerService_GetEnforcedBlock")
async def get_enforced_block(
    enforced_block_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    block = await run(svc, svc.enforced.get, caller, enforced_block_id)
    org = caller.organization_id
    return JSONBody({"enforced_block": render.enforced_block(block, org, with_latest=True)})


@router.patch(BLOCK, operation_id="PackerService_UpdateEnforcedBlock")
async def update_enforced_block(
    enforced_block_id: str, body: UpdateEnforcedBlockBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    block = await run(
        svc,
        svc.enforced.update,
        caller,
        enforced_block_id,
        name=body.name,
        labels=body.labels,
        update_mask=body.update_mask,
    )
    org = caller.organization_id
    return JSONBody({"enforced_block": render.enforced_block(block, org, with_latest=True)})


@router.delete(BLOCK, operation_id="PackerService_DeleteEnforcedBlock")
async def delete_enforced_block(
    enforced_block_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    await run(svc, svc.enforced.delete, caller, enforced_block_id)
    return JSONBody({})


@router.get(BLOCK + "/versions", operation_id="PackerService_GetEnforcedBlockVersions")
async def get_enforced_block_versions(
    enforced_block_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    found = await run(svc, svc.enforced.versions, caller, enforced_block_id)
    return JSONBody(
        {
            "enforced_block_detail": [
                render.enforced_block_detail(found.block, v) for v in found.versions
            ]
        }
    )


@router.put(BLOCK + "/versions", operation_id="PackerService_CreateEnforcedBlockVersion")
async def create_enforced_block_version(
    enforced_block_id: str,
    body: CreateEnforcedBlockVersionBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    version = await run(
        svc,
        svc.enforced.create_version,
        caller,
        enforced_block_id,
        version=body.version,
        template_type_name=body.template_type,
        block_content=body.block_content,
        additional_description=body.additional_description,
    )
    return JSONBody({"enforced_block_version": render.enforced_block_version(version)})


@router.patch(VERSION, operation_id="PackerService_UpdateEnforcedBlockVersion")
async def update_enforced_block_version(
    enforced_block_id: str,
    enforced_block_version_id: str,
    body: UpdateEnforcedBlockVersionBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    version = await run(
        svc,
        svc.enforced.update_version,
        caller,
        enforced_block_id,
        enforced_block_version_id,
        additional_description=body.additional_description,
        update_mask=body.update_mask,
    )
    return JSONBody({"enforced_block_version": render.enforced_block_version(version)})


@router.delete(VERSION, operation_id="PackerService_DeleteEnforcedBlockVersion")
async def delete_enforced_block_version(
    enforced_block_id: str, enforced_block_version_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    await run(
        svc, svc.enforced.delete_version, caller, enforced_block_id, enforced_block_version_id
    )
    return JSONBody({})


@router.get(VERSION + "/buckets", operation_id="PackerService_GetEnforcedBlockLinkedBuckets")
async def get_enforced_block_linked_buckets(
    enforced_block_id: str, enforced_block_version_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    found = await run(
        svc, svc.enforced.linked, caller, enforced_block_id, enforced_block_version_id
    )
    org, now = caller.organization_id, utcnow()
    return JSONBody(
        {
            "linked_buckets": [
                {
                    "id": item.link.id,
                    "bucket": render.bucket(item.bucket, org, now),
                    "enforced_block_id": item.link.block_id,
                    "enforced_block_version_id": item.link.version_id,
                    "created_at": render.ts(item.link.created_at),
                }
                for item in found
            ]
        }
    )


@router.post(VERSION + "/buckets", operation_id="PackerService_ManageEnforcedBlockLinkedBuckets")
async def manage_enforced_block_linked_buckets(
    enforced_block_id: str,
    enforced_block_version_id: str,
    body: ManageEnforcedBlockLinkedBucketsBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    links = await run(
        svc,
        svc.enforced.manage_links,
        caller,
        enforced_block_id,
        enforced_block_version_id,
        body.bucket_names,
    )
    return JSONBody({"enforced_block_buckets": [render.enforced_block_bucket(x) for x in links]})
