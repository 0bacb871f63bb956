"""Buckets: list, create (PUT), get, update, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import CreateBucketBody, UpdateBucketBody
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow
from packyard.store.buckets import BUCKET_SORT

router = APIRouter(prefix=PACKER_BASE, tags=["buckets"])
BucketPage = Annotated[PageRequest, Depends(page_params(set(BUCKET_SORT)))]


@router.get("/buckets", operation_id="PackerService_ListBuckets")
async def list_buckets(caller: CallerDep, svc: ServicesDep, page: BucketPage) -> JSONBody:
    result = await run(svc, svc.buckets.list_page, caller, page)
    now = utcnow()
    return JSONBody(
        {
            "buckets": [render.bucket(b, caller.organization_id, now) for b in result.items],
            "pagination": render.pagination(result),
        }
    )


@router.put("/buckets", operation_id="PackerService_CreateBucket")
async def create_bucket(body: CreateBucketBody, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    bucket = await run(svc, svc.buckets.create, caller, body.name, body.description, body.labels)
    return JSONBody({"bucket": render.bucket(bucket, caller.organization_id, utcnow())})


@router.get("/buckets/{bucket_name}", operation_id="PackerService_GetBucket")
async def get_bucket(bucket_name: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    bucket = await run(svc, svc.buckets.get, caller, bucket_name)
    return JSONBody({"bucket": render.bucket(bucket, caller.organization_id, utcnow())})


@router.patch("/buckets/{bucket_name}", operation_id="PackerService_UpdateBucket")
async def update_bucket(
    bucket_name: str, body: UpdateBucketBody, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    bucket = await run(svc, svc.buckets.update, caller, bucket_name, body.description, body.labels)
    return JSONBody({"bucket": render.bucket(bucket, caller.organization_id, utcnow())})


@router.delete("/buckets/{bucket_name}", operation_id="PackerService_DeleteBucket")
async def delete_bucket(bucket_name: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    await run(svc, svc.buckets.delete, caller, bucket_name)
    return JSONBody({})
