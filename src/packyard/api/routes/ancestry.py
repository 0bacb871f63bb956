"""Bucket ancestry: the parent and child relations of a bucket's versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.domain.paging import PageRequest

router = APIRouter(prefix=PACKER_BASE, tags=["ancestry"])
# The listing has a fixed order (parents first, newest first): no sorting.order_by.
AncestryPage = Annotated[PageRequest, Depends(page_params(set()))]


@router.get("/buckets/{bucket_name}/ancestry", operation_id="PackerService_ListBucketAncestry")
async def list_bucket_ancestry(
    bucket_name: str,
    caller: CallerDep,
    svc: ServicesDep,
    page: AncestryPage,
    type: Annotated[str | None, Query()] = None,
    version_fingerprint: Annotated[str | None, Query()] = None,
    channel_name: Annotated[str | None, Query()] = None,
) -> JSONBody:
    result = await run(
        svc,
        svc.ancestry.list_page,
        caller,
        bucket_name,
        ancestry_type=type,
        version_fingerprint=version_fingerprint or None,
        channel_name=channel_name or None,
        page=page,
    )
    return JSONBody(
        {
            "relations": [render.ancestry_relation(r) for r in result.items],
            "total_count": result.total or 0,
            "pagination": render.pagination(result),
        }
    )
