"""Console pages: a bucket's channels (list, create, promote) and one channel (what it
serves, its assignment history as a timeline, assign, restrict, delete).

Every change is for writers: a viewer sees no form, and a forged POST answers the 403 page
(the services refuse it too). Bad input is explained next to its field and changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.calls import run
from packyard.domain.models import Caller
from packyard.domain.paging import PageRequest
from packyard.errors import ApiError, Code, invalid
from packyard.services.container import Services
from packyard.web.console import (
    Context,
    acting,
    checked,
    context,
    error_page,
    field,
    field_errors,
    redirect,
    show,
    submitted,
)

router = APIRouter(include_in_schema=False)

HISTORY_PAGE = 25

# --- the bucket's channels -----------------------------------------------------------

_CREATE_FIELDS = {"name": "create-name", "version_fingerprint": "create-version"}
_PROMOTE_FIELDS = {"source_channel": "promote-from", "target_channel": "promote-to"}
_DONE = {
    "created": "The channel was created.",
    "promoted": "The channel now serves the promoted version.",
    "deleted": "The channel was deleted.",
    "assigned": "The channel now serves the chosen version.",
    "unassigned": "The channel now serves nothing.",
    "restricted": "The channel is now restricted: only contributors and admins see it.",
    "unrestricted": "The channel is no longer restricted: everyone on the project sees it.",
}


def _list_loader(
    bucket: str, include: str | None
) -> Callable[[Services, Caller], Mapping[str, Any]]:
    def load(svc: Services, caller: Caller) -> Mapping[str, Any]:
        return {"overview": svc.channels.overview(caller, bucket, include=include)}

    return load


def _renamed(errors: dict[str, str], names: Mapping[str, str]) -> dict[str, str]:
    return {names.get(k, k): v for k, v in errors.items()}


@router.get("/p/{project_id}/buckets/{bucket}/channels")
async def channel_list(
    request: Request, project_id: str, bucket: str, version: str = "", done: str = ""
) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return await show(
        ctx,
        "channels.html",
        _list_loader(bucket, version or None),
        bucket_name=bucket,
        errors={},
        entered={"create-version": version},
        done=_DONE.get(done),
    )


@router.post("/p/{project_id}/buckets/{bucket}/channels")
async def create_channel(request: Request, project_id: str, bucket: str) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    name, fingerprint = field(data, "name").strip(), field(data, "version")
    restricted = checked(data, "restricted")
    svc, caller = acting(ctx)
    try:
        await run(svc, svc.channels.create, caller, bucket, name, fingerprint or None, restricted)
    except ApiError as exc:
        if exc.code is Code.PERMISSION_DENIED:
            return error_page(ctx, request, exc)
        if exc.code is Code.ALREADY_EXISTS:
            errors = field_errors(exc, at="name")
        else:
            errors = field_errors(exc, at="version_fingerprint" if fingerprint else "form")
        return await show(
            ctx,
            "channels.html",
            _list_loader(bucket, fingerprint or None),
            status=400,
            bucket_name=bucket,
            errors=_renamed(errors, _CREATE_FIELDS),
            entered={
                "create-name": name,
                "create-version": fingerprint,
                "create-restricted": restricted,
            },
            done=None,
        )
    return redirect(ctx.url("buckets", bucket, "channels", name) + "?done=created")


@router.post("/p/{project_id}/buckets/{bucket}/channels/promote")
async def promote_channel(request: Request, project_id: str, bucket: str) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    source, target = field(data, "from"), field(data, "to")
    svc, caller = acting(ctx)
    try:
        await run(svc, svc.channels.promote, caller, bucket, source or None, target or None)
    except ApiError as exc:
        if exc.code is Code.PERMISSION_DENIED:
            return error_page(ctx, request, exc)
        errors = _renamed(field_errors(exc, at="target_channel"), _PROMOTE_FIELDS)
        return await show(
            ctx,
            "channels.html",
            _list_loader(bucket, None),
            status=400,
            bucket_name=bucket,
            errors=errors,
            entered={"promote-from": source, "promote-to": target},
            done=None,
        )
    return redirect(ctx.url("buckets", bucket, "channels", target) + "?done=promoted")


# --- one channel ---------------------------------------------------------------------


def _detail_loader(
    bucket: str, name: str, page: PageRequest
) -> Callable[[Services, Caller], Mapping[str, Any]]:
    def load(svc: Services, caller: Caller) -> Mapping[str, Any]:
        return {"detail": svc.channels.detail(caller, bucket, name, page)}

    return load


async def _detail(
    ctx: Context,
    bucket: str,
    name: str,
    *,
    page: PageRequest | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    entered: dict[str, Any] | None = None,
    done: str | None = None,
    paged: bool = False,
) -> Response:
    here = ctx.url("buckets", bucket, "channels", name)
    return await show(
        ctx,
        "channel.html",
        _detail_loader(bucket, name, page or PageRequest(size=HISTORY_PAGE)),
        status=status,
        bucket_name=bucket,
        here=here,
        page_url=page_url,
        first_url=here if paged else None,
        errors=errors or {},
        entered=entered or {},
        done=done,
    )


@router.get("/p/{project_id}/buckets/{bucket}/channels/{channel}")
async def channel_detail(
    request: Request, project_id: str, bucket: str, channel: str, page: str = "", done: str = ""
) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return await _detail(
        ctx,
        bucket,
        channel,
        page=PageRequest(size=HISTORY_PAGE, next_token=page or None),
        done=_DONE.get(done),
        paged=bool(page),
    )


def page_url(base: str, token: str) -> str:
    return f"{base}?{urlencode({'page': token})}" if token else ""


@router.post("/p/{project_id}/buckets/{bucket}/channels/{channel}/assign")
async def assign_version(request: Request, project_id: str, bucket: str, channel: str) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    fingerprint = field(data, "version")
    svc, caller = acting(ctx)
    try:
        await run(
            svc,
            svc.channels.update,
            caller,
            bucket,
            channel,
            fingerprint=fingerprint or None,
            restricted=None,
            update_mask="versionFingerprint",
        )
    except ApiError as exc:
        # A missing version is the person's choice gone stale; a missing channel is a 404.
        if exc.code is Code.PERMISSION_DENIED or (exc.code is Code.NOT_FOUND and not fingerprint):
            return error_page(ctx, request, exc)
        return await _detail(
            ctx,
            bucket,
            channel,
            status=400,
            errors=field_errors(exc, at="assign-version"),
            entered={"assign-version": fingerprint},
        )
    done = "assigned" if fingerprint else "unassigned"
    return redirect(ctx.url("buckets", bucket, "channels", channel) + f"?done={done}")


@router.post("/p/{project_id}/buckets/{bucket}/channels/{channel}/restriction")
async def change_restriction(
    request: Request, project_id: str, bucket: str, channel: str
) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    restricted = checked(data, "restricted")
    svc, caller = acting(ctx)
    try:
        await run(
            svc,
            svc.channels.update,
            caller,
            bucket,
            channel,
            fingerprint=None,
            restricted=restricted,
            update_mask="restricted",
        )
    except ApiError as exc:
        return error_page(ctx, request, exc)
    done = "restricted" if restricted else "unrestricted"
    return redirect(ctx.url("buckets", bucket, "channels", channel) + f"?done={done}")


@router.post("/p/{project_id}/buckets/{bucket}/channels/{channel}/delete")
async def delete_channel(request: Request, project_id: str, bucket: str, channel: str) -> Response:
    got = await submitted(request, project_id, bucket=bucket)
    if isinstance(got, Response):
        return got
    ctx, data = got
    typed = field(data, "confirm").strip()
    svc, caller = acting(ctx)
    try:
        if typed != channel:
            raise invalid(f"Type the channel's name, {channel}, to delete it.", field="confirm")
        await run(svc, svc.channels.delete, caller, bucket, channel)
    except ApiError as exc:
        if exc.code in (Code.PERMISSION_DENIED, Code.NOT_FOUND):
            return error_page(ctx, request, exc)
        errors = _renamed(field_errors(exc, at="confirm"), {"confirm": "delete-confirm"})
        return await _detail(
            ctx, bucket, channel, status=400, errors=errors, entered={"delete-confirm": typed}
        )
    return redirect(ctx.url("buckets", bucket, "channels") + "?done=deleted")
