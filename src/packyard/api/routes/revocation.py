"""What a revocation or a restore changes (Packyard's own API): the descendants that inherit
the revocation and the channels it rolls back; the descendants a restore clears.

HCP's UpdateVersion answers with the revoked or restored version only, so clients that report
the cascade (``packyard versions revoke`` and ``restore``) ask here first. The answers come from
the same service as the console's preview (:meth:`RevocationService.preview`): one rule, one
place.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from packyard.api import render
from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKYARD_BASE
from packyard.domain.models import Version
from packyard.domain.rules import is_unset_time
from packyard.services.revocation import (
    ChannelChange,
    RestorePreview,
    RevocationPreview,
    RevocationRequest,
)

router = APIRouter(prefix=PACKYARD_BASE, tags=["revocation"])


@router.get(
    "/buckets/{bucket_name}/versions/{fingerprint}/revocation-preview",
    operation_id="Packyard_PreviewRevocation",
    description=(
        "The changes UpdateVersion would make with these revocation fields, now; nothing is"
        " changed. The same checks and errors as the revocation itself (writers only)."
    ),
)
async def preview_revocation(
    bucket_name: str,
    fingerprint: str,
    caller: CallerDep,
    svc: ServicesDep,
    revoke_at: Annotated[datetime | None, Query()] = None,
    revoke_in: Annotated[str | None, Query()] = None,
    skip_descendants_revocation: Annotated[bool, Query()] = False,
    disable_rollback_channels: Annotated[bool, Query()] = False,
) -> JSONBody:
    request = RevocationRequest(
        revoke_at=None if is_unset_time(revoke_at) else revoke_at,
        revoke_in=revoke_in or None,
        message="",
        restore=False,
        skip_descendants=skip_descendants_revocation,
        disable_rollback=disable_rollback_channels,
    )
    preview = await run(svc, svc.revocation.preview, caller, bucket_name, fingerprint, request)
    return JSONBody(_preview(preview))


@router.get(
    "/buckets/{bucket_name}/versions/{fingerprint}/restore-preview",
    operation_id="Packyard_PreviewRestore",
    description=(
        "The descendants a restore of this version would clear the inherited revocation of,"
        " now; nothing is changed. The same checks and errors as the restore (writers only)."
    ),
)
async def preview_restore(
    bucket_name: str, fingerprint: str, caller: CallerDep, svc: ServicesDep
) -> JSONBody:
    preview = await run(svc, svc.revocation.restore_preview, caller, bucket_name, fingerprint)
    return JSONBody(_restore(preview))


def _ref(v: Version) -> dict[str, Any]:
    return {
        "bucket_name": v.bucket_name,
        "version_id": v.id,
        "version_name": v.name,
        "version_fingerprint": v.fingerprint,
    }


def _channel(c: ChannelChange) -> dict[str, Any]:
    return {
        "bucket_name": c.bucket_name,
        "channel_name": c.channel_name,
        "managed": c.managed,
        "restricted": c.restricted,
        "from_version": _ref(c.from_version) if c.from_version else None,
        "to_version": _ref(c.to_version) if c.to_version else None,
    }


def _preview(p: RevocationPreview) -> dict[str, Any]:
    return {
        "version": _ref(p.version),
        "revoke_at": render.ts(p.revoke_at),
        "immediate": p.immediate,
        "replaces_scheduled": p.replaces,
        "descendants": [{**_ref(d.version), "revoked": d.revoked} for d in p.descendants],
        "descendants_revoked": p.descendants_revoked,
        "descendants_untouched": p.descendants_untouched,
        "channels": [_channel(c) for c in p.channels],
        "hidden_descendants": p.hidden_descendants,
        "hidden_channels": p.hidden_channels,
    }


def _restore(p: RestorePreview) -> dict[str, Any]:
    return {
        "version": _ref(p.version),
        "descendants": [_ref(d) for d in p.descendants],
        "descendants_restored": p.descendants_restored,
        "hidden_descendants": p.hidden_descendants,
    }
