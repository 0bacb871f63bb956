"""Enforced blocks: not offered yet; Packer tolerates code 12 on its one call."""

from __future__ import annotations

from fastapi import APIRouter

from packyard.api.deps import CallerDep
from packyard.api.routes import PACKER_BASE
from packyard.errors import ApiError, Code

router = APIRouter(prefix=PACKER_BASE, tags=["enforced blocks"])


@router.get(
    "/enforced_blocks/bucket/{bucket_name}",
    operation_id="PackerService_GetEnforcedBlocksByBucket",
)
async def get_enforced_blocks_by_bucket(bucket_name: str, caller: CallerDep) -> None:
    raise ApiError(Code.UNIMPLEMENTED, "Enforced blocks are not supported by this registry.")
