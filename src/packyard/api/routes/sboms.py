"""SBOMs: upload (PUT), list, get a download link; the link itself needs no token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.links import public_base
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKER_BASE
from packyard.api.wire import UploadSbomBody
from packyard.store.sboms import Sbom

router = APIRouter(tags=["sboms"])
SBOMS = PACKER_BASE + "/buckets/{bucket_name}/versions/{fingerprint}/builds/{build_id}/sboms"


def _sbom(s: Sbom) -> dict[str, str]:
    return {"id": s.id, "name": s.name, "format": s.format.value}


@router.put(SBOMS, operation_id="PackerService_UploadSbom")
async def upload_sbom(
    bucket_name: str,
    fingerprint: str,
    build_id: str,
    body: UploadSbomBody,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    sbom = await run(
        svc,
        svc.sboms.upload,
        caller,
        bucket_name,
        fingerprint,
        build_id,
        compressed=body.compressed_sbom,
        sbom_format=body.format,
        name=body.name,
    )
    return JSONBody({"sbom": _sbom(sbom)})


@router.get(SBOMS, operation_id="PackerService_ListSboms")
async def list_sboms(
    bucket_name: str, fingerprint: str, build_id: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    items = await run(svc, svc.sboms.list_for_build, caller, bucket_name, fingerprint, build_id)
    return JSONBody({"sboms": [_sbom(s) for s in items]})


@router.get(SBOMS + "/{sbom_name}", operation_id="PackerService_GetSbom")
async def get_sbom(
    bucket_name: str,
    fingerprint: str,
    build_id: str,
    sbom_name: str,
    request: Request,
    caller: CallerDep,
    svc: ServicesDep,
) -> JSONBody:
    path = await run(
        svc, svc.sboms.download_path, caller, bucket_name, fingerprint, build_id, sbom_name
    )
    # The configured public address, never the request's Host header.
    base = public_base(request.app.state.public_url, request.scope)
    return JSONBody({"download_url": base + path})


@router.get("/sbom-downloads/{sbom_id}", operation_id="Packyard_DownloadSbom")
async def download_sbom(
    sbom_id: str,
    svc: ServicesDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
) -> Response:
    return Response(
        await run(svc, svc.sboms.download, sbom_id, expires, signature),
        media_type="application/json",
    )
