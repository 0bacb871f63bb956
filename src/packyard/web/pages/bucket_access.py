"""Console: who has access to one bucket — its grants, granting a role to a member and
removing a member's grant — on the bucket's page, for the project's admins and the bucket's
admins (``may_manage_bucket_access``; the services refuse everyone else, so a forged form
gets the 403 page and changes nothing).

A member is named as ``packyard access grant`` names it: a service principal's client ID (or
id), or a person's email (or id). Grants add to the project role (see
:mod:`packyard.domain.access`).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.calls import run
from packyard.domain.enums import Role
from packyard.domain.models import Caller
from packyard.errors import ApiError, Code, invalid
from packyard.services.access import AccessEntry
from packyard.services.container import Services
from packyard.web.console import (
    Context,
    acting,
    error_page,
    field,
    field_errors,
    redirect,
    submitted,
)
from packyard.web.pages.registry import AccessForm, bucket_view

router = APIRouter(include_in_schema=False)

_ACCESS = "/p/{project_id}/buckets/{bucket}/access"
_GRANT_FIELDS = {"member": "grant-member", "role": "grant-role", "form": "grant-form"}


def _grant(svc: Services, caller: Caller, bucket: str, member: str, role: str) -> AccessEntry:
    if not member:
        raise invalid("Give a service principal's client ID or a person's email.", field="member")
    try:
        chosen = Role(role)
    except ValueError:
        raise invalid("Choose viewer, contributor or admin.", field="role") from None
    org, project = caller.organization_id, caller.project_id
    return svc.access.grant(caller, org, project, member, chosen, bucket)


def _revoke(svc: Services, caller: Caller, bucket: str, member: str) -> None:
    svc.access.revoke(caller, caller.organization_id, caller.project_id, member, bucket)


async def _refused(
    ctx: Context,
    bucket: str,
    error: ApiError,
    *,
    missing: str,
    fields: Mapping[str, str],
    kept: Mapping[str, str] | None = None,
) -> Response:
    """The bucket page again with the refusal next to the control that asked (a member that
    does not exist: next to ``missing``); the 403 page for who may not manage access."""
    if error.code is Code.PERMISSION_DENIED:
        return error_page(ctx, ctx.request, error)
    if error.code is Code.NOT_FOUND:
        # A missing bucket answers 404 when the page is loaded again; so this is the member.
        errors = {missing: error.message}
    else:
        errors = {fields.get(k, fields["form"]): v for k, v in field_errors(error).items()}
    return await bucket_view(ctx, bucket, access=AccessForm(errors=errors, kept=kept or {}))


def _back(ctx: Context, bucket: str, done: str, member: str) -> Response:
    query = urlencode({"done": done, "id": member})
    return redirect(f"{ctx.url('buckets', bucket)}?{query}#access")


@router.post(_ACCESS)
async def grant_access(request: Request, project_id: str, bucket: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    member, role = field(data, "member").strip(), field(data, "role")
    svc, caller = acting(ctx)
    try:
        entry = await run(svc, _grant, svc, caller, bucket, member, role)
    except ApiError as exc:
        kept = {"grant-member": member, "grant-role": role}
        return await _refused(
            ctx, bucket, exc, missing="grant-member", fields=_GRANT_FIELDS, kept=kept
        )
    return _back(ctx, bucket, "granted", entry.member.id)


@router.post(_ACCESS + "/revoke")
async def revoke_access(request: Request, project_id: str, bucket: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    member = field(data, "member")
    svc, caller = acting(ctx)
    try:
        await run(svc, _revoke, svc, caller, bucket, member)
    except ApiError as exc:
        return await _refused(ctx, bucket, exc, missing="grants", fields={"form": "grants"})
    if member == caller.principal_id and caller.role is None:
        return redirect(ctx.url())  # their own last way into the bucket: it is gone for them
    return _back(ctx, bucket, "revoked", member)
