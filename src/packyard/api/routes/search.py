"""Reverse lookup of an external (cloud) artifact id across the project's buckets."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from packyard.api import render
from packyard.api.admission import without_write_turn
from packyard.api.calls import run_read
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.paging import page_params
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import SearchExternalArtifactBody
from packyard.domain.paging import PageRequest
from packyard.domain.rules import utcnow

router = APIRouter(prefix=PACKER_BASE, tags=["search"])
SearchPage = Annotated[PageRequest, Depends(page_params(set()))]


@router.post("/_search/external_artifact", operation_id="PackerService_SearchExternalArtifact")
@without_write_turn
async def search_external_artifact(
    body: SearchExternalArtifactBody, caller: CallerDep, svc: ServicesDep, page: SearchPage
) -> JSONBody:
    result = await run_read(
        svc,
        svc.search.external_artifact,
        caller,
        body.external_identifier,
        platform=body.platform,
        region=body.region,
        page=page,
    )
    now = utcnow()
    return JSONBody(
        {
            "artifacts": [render.external_artifact(hit, now) for hit in result.items],
            "pagination": render.pagination(result),
        }
    )
