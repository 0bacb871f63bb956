"""Console pages: who has access to a project — its people (users) and its service principals.

For the project's admins only: the services refuse everyone else (``may_manage_access``), so
a forged form gets the 403 page and changes nothing. Passwords and client secrets exist in
clear only in the answer to the form that made them: they are rendered into that response
(``cache-control: no-store``), never put in a URL and never stored.

Every change is one service call; what the services refuse (the project's last enabled admin
principal, a person changing their own access, bad input) is shown next to the control that
asked for it, with the page re-rendered and nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.admission import without_write_turn
from packyard.api.calls import run, run_hashing
from packyard.domain.enums import Role
from packyard.domain.models import Caller, PrincipalRecord, UserRecord
from packyard.errors import ApiError, Code, invalid
from packyard.services.container import Services
from packyard.web.console import (
    Context,
    error_page,
    field,
    field_errors,
    page,
    redirect,
    render,
    services,
    submitted,
)

router = APIRouter(include_in_schema=False)

T = TypeVar("T")
ROLES = tuple(Role)
ROLE_HELP = {
    Role.VIEWER: "reads the registry",
    Role.CONTRIBUTOR: "also pushes images, moves channels and revokes",
    Role.ADMIN: "also manages who has access",
}
# What a finished change says on the page it returns to (``?done=…&id=…``): fixed texts, so
# nothing a link carries is shown as it is; the name comes from the listing.
DONE = {
    "user-role": "Changed the role of {name}.",
    "user-disabled": "Disabled {name}: they cannot sign in, and their sessions have ended.",
    "user-enabled": "Enabled {name}: they can sign in again.",
    "principal-role": "Changed the role of {name}.",
    "principal-disabled": "Disabled {name}: it gets no new tokens, and the ones it held "
    "stopped working.",
    "principal-enabled": "Enabled {name}: it can request new tokens.",
    "principal-deleted": "Deleted the service principal.",
}


# --- reading ------------------------------------------------------------------------------


def _listing(svc: Services, caller: Caller) -> dict[str, Any]:
    org, project = caller.organization_id, caller.project_id
    return {
        "users": svc.users.list_for_project(caller, org, project),
        "principals": svc.principals.list(caller, org, project),
        # Grants on single buckets (managed on each bucket's page): shown here read-only.
        "grants": [e for e in svc.access.list(caller, org, project) if e.bucket is not None],
    }


def _notice(done: str, subject: str, values: Mapping[str, Any]) -> str:
    text = DONE.get(done)
    if text is None:
        return ""
    users: list[UserRecord] = values["users"]
    principals: list[PrincipalRecord] = values["principals"]
    names = {u.user.id: u.user.email for u in users} | {p.id: p.name for p in principals}
    return text.format(name=names.get(subject, "it"))


def _values(
    values: Mapping[str, Any],
    *,
    errors: Mapping[str, str] | None = None,
    kept: Mapping[str, str] | None = None,
    notice: str = "",
) -> dict[str, Any]:
    return {
        **values,
        "roles": ROLES,
        "role_help": ROLE_HELP,
        "errors": dict(errors or {}),
        "kept": dict(kept or {}),
        "notice": notice,
    }


@router.get("/p/{project_id}/access")
async def access(request: Request, project_id: str, done: str = "", id: str = "") -> Response:
    def load(svc: Services, caller: Caller) -> dict[str, Any]:
        values = _listing(svc, caller)
        return _values(values, notice=_notice(done, id, values))

    return await page(request, project_id, "access.html", load)


# --- changing -----------------------------------------------------------------------------


def _role(value: str, field_name: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise invalid("Choose viewer, contributor or admin.", field=field_name) from None


async def _call(
    ctx: Context, change: Callable[[Services, Caller, str, str], T], *, hashing: bool = False
) -> T:
    """One change through the services, as the signed-in person on this project (``hashing``:
    a change that hashes a password, run off the event loop)."""
    caller = ctx.caller
    assert caller is not None
    svc = services(ctx.request)
    args = (svc, caller, caller.organization_id, caller.project_id)
    if hashing:
        return await run_hashing(change, *args)
    return await run(svc, change, *args)


async def _refused(
    ctx: Context,
    error: ApiError,
    *,
    where: str,
    fields: Mapping[str, str] | None = None,
    kept: Mapping[str, str] | None = None,
) -> Response:
    """The access page again with the refusal next to the control that asked (``where``, or
    ``fields`` mapping the service's field names to the controls' ids); the 403/404 page for
    someone who may not manage access or a row that is gone."""
    if not ctx.is_admin or error.code is Code.NOT_FOUND:
        return error_page(ctx, ctx.request, error)
    found = field_errors(error)
    errors: dict[str, str] = {}
    for name, message in found.items():
        errors.setdefault((fields or {}).get(name, where), message)
    svc = services(ctx.request)
    assert ctx.caller is not None
    try:
        values = await run(svc, _listing, svc, ctx.caller)
    except ApiError as exc:
        return error_page(ctx, ctx.request, exc)
    status = error.http_status if 400 <= error.http_status < 500 else 400
    return render(ctx, "access.html", _values(values, errors=errors, kept=kept), status=status)


def _back(ctx: Context, done: str, subject: str, anchor: str = "") -> Response:
    query = urlencode({"done": done, "id": subject})
    return redirect(f"{ctx.url('access')}?{query}" + (f"#{anchor}" if anchor else ""))


def _secret(ctx: Context, values: Mapping[str, Any]) -> Response:
    """The page that shows a new password or secret, once (it is in this answer only)."""
    return render(ctx, "access_secret.html", {"user": None, "principal": None, **values})


_UPDATE: dict[str, Callable[[Services], Callable[..., Any]]] = {
    "user": lambda svc: svc.users.update,
    "principal": lambda svc: svc.principals.update,
}


async def _update(
    request: Request,
    project_id: str,
    kind: str,
    ref: str,
    *,
    role_from_form: bool = False,
    disabled: bool | None = None,
) -> Response:
    """A user's or a principal's new role (from the form) or status, then back to its row."""
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    try:
        await _call(
            ctx,
            lambda svc, caller, org, project: _UPDATE[kind](svc)(
                caller,
                org,
                project,
                ref,
                role=_role(field(data, "role"), "role") if role_from_form else None,
                disabled=disabled,
            ),
        )
    except ApiError as exc:
        return await _refused(ctx, exc, where=f"{'role' if role_from_form else 'status'}-{ref}")
    done = "role" if role_from_form else ("disabled" if disabled else "enabled")
    return _back(ctx, f"{kind}-{done}", ref, f"{kind}-{ref}")


# users


@router.post("/p/{project_id}/access/users")
@without_write_turn
async def create_user(request: Request, project_id: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    email, role = field(data, "email"), field(data, "role")
    try:
        made = await _call(
            ctx,
            lambda svc, caller, org, project: svc.users.create(
                caller, org, project, email=email, role=_role(role, "role")
            ),
            hashing=True,
        )
    except ApiError as exc:
        return await _refused(
            ctx,
            exc,
            where="user-email" if exc.code is Code.ALREADY_EXISTS else "user-form",
            fields={"email": "user-email", "role": "user-role"},
            kept={"user-email": email, "user-role": role},
        )
    return _secret(ctx, {"kind": "user-created", "user": made.record, "password": made.password})


@router.post("/p/{project_id}/access/users/{user_id}/role")
async def set_user_role(request: Request, project_id: str, user_id: str) -> Response:
    return await _update(request, project_id, "user", user_id, role_from_form=True)


@router.post("/p/{project_id}/access/users/{user_id}/disable")
async def disable_user(request: Request, project_id: str, user_id: str) -> Response:
    return await _update(request, project_id, "user", user_id, disabled=True)


@router.post("/p/{project_id}/access/users/{user_id}/enable")
async def enable_user(request: Request, project_id: str, user_id: str) -> Response:
    return await _update(request, project_id, "user", user_id, disabled=False)


@router.post("/p/{project_id}/access/users/{user_id}/reset-password")
@without_write_turn
async def reset_password(request: Request, project_id: str, user_id: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, _ = got
    try:
        made = await _call(
            ctx,
            lambda svc, caller, org, project: svc.users.reset_password(
                caller, org, project, user_id
            ),
            hashing=True,
        )
    except ApiError as exc:
        return await _refused(ctx, exc, where=f"reset-{user_id}")
    return _secret(ctx, {"kind": "password-reset", "user": made.record, "password": made.password})


# service principals


@router.post("/p/{project_id}/access/principals")
async def create_principal(request: Request, project_id: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    name, role = field(data, "name"), field(data, "role")
    try:
        issued = await _call(
            ctx,
            lambda svc, caller, org, project: svc.principals.create(
                caller, org, project, name=name, role=_role(role, "role")
            ),
        )
    except ApiError as exc:
        return await _refused(
            ctx,
            exc,
            where="principal-form",
            fields={"name": "principal-name", "role": "principal-role"},
            kept={"principal-name": name, "principal-role": role},
        )
    return _secret(
        ctx,
        {
            "kind": "principal-created",
            "principal": issued.principal,
            "secret": issued.client_secret,
        },
    )


@router.post("/p/{project_id}/access/principals/{principal_id}/role")
async def set_principal_role(request: Request, project_id: str, principal_id: str) -> Response:
    return await _update(request, project_id, "principal", principal_id, role_from_form=True)


@router.post("/p/{project_id}/access/principals/{principal_id}/disable")
async def disable_principal(request: Request, project_id: str, principal_id: str) -> Response:
    return await _update(request, project_id, "principal", principal_id, disabled=True)


@router.post("/p/{project_id}/access/principals/{principal_id}/enable")
async def enable_principal(request: Request, project_id: str, principal_id: str) -> Response:
    return await _update(request, project_id, "principal", principal_id, disabled=False)


@router.post("/p/{project_id}/access/principals/{principal_id}/rotate-secret")
async def rotate_secret(request: Request, project_id: str, principal_id: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    revoke = field(data, "revoke_tokens") == "true"
    try:
        issued = await _call(
            ctx,
            lambda svc, caller, org, project: svc.principals.rotate_secret(
                caller, org, project, principal_id, revoke_tokens=revoke
            ),
        )
    except ApiError as exc:
        return await _refused(ctx, exc, where=f"rotate-{principal_id}")
    return _secret(
        ctx,
        {
            "kind": "secret-rotated",
            "principal": issued.principal,
            "secret": issued.client_secret,
            "revoked": revoke,
        },
    )


def _delete_principal(
    svc: Services, caller: Caller, org: str, project: str, ref: str, confirm: str
) -> None:
    """Delete the principal once its name was typed exactly (the page's JavaScript waits for
    it too; this is the check that counts)."""
    target = svc.principals.get(caller, org, project, ref)
    if confirm.strip() != target.name:
        raise invalid(f"Type the name {target.name} exactly to delete it.", field="confirm")
    svc.principals.delete(caller, org, project, target.id)


@router.post("/p/{project_id}/access/principals/{principal_id}/delete")
async def delete_principal(request: Request, project_id: str, principal_id: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    confirm = field(data, "confirm")
    try:
        await _call(
            ctx,
            lambda svc, caller, org, project: _delete_principal(
                svc, caller, org, project, principal_id, confirm
            ),
        )
    except ApiError as exc:
        return await _refused(ctx, exc, where=f"delete-{principal_id}")
    return _back(ctx, "principal-deleted", principal_id)
