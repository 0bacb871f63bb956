"""Signing in and out, one's own account, and the way into a project."""

from __future__ import annotations

import hmac
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.admission import without_write_turn
from packyard.api.calls import run, run_hashing
from packyard.errors import ApiError, Code
from packyard.services.throttle import retry_after
from packyard.web.console import (
    SIGN_IN_COOKIE,
    Context,
    context,
    cookie_name,
    field,
    field_errors,
    form,
    is_secure,
    local_path,
    new_csrf,
    redirect,
    render,
    services,
    session_token,
)

router = APIRouter(include_in_schema=False)


def _sign_in_page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
    ended: bool = False,
) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or new_csrf()
    response = render(
        None,
        "sign_in.html",
        {
            "sign_in_csrf": token,
            "next": next_path,
            "email": email,
            "errors": errors or {},
            "ended": ended,
        },
        status=status,
        request=request,
    )
    response.set_cookie(
        SIGN_IN_COOKIE, token, httponly=True, samesite="lax", secure=is_secure(request), path="/"
    )
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = "/") -> Response:
    ended = session_token(request) is not None or next != "/"
    return _sign_in_page(request, next_path=local_path(next), ended=ended)


@router.post("/sign-in")
@without_write_turn
async def sign_in(request: Request) -> Response:
    data = await request.form()
    next_path = local_path(field(data, "next"))
    email = field(data, "email")
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, field(data, "csrf_token")):
        errors = {"form": "This form has expired; sign in again."}
        return _sign_in_page(request, next_path=next_path, email=email, errors=errors, status=403)
    svc = services(request)
    address = request.client.host if request.client else None
    try:
        token, _ = await run_hashing(
            svc.users.sign_in, email, field(data, "password"), address=address
        )
    except ApiError as exc:
        if exc.code is Code.RESOURCE_EXHAUSTED:
            minutes = max(1, round((retry_after(exc) or 60) / 60))
            unit = "minute" if minutes == 1 else "minutes"
            message = f"Too many sign-in attempts; try again in {minutes} {unit}."
            status = 429
        else:
            message, status = exc.message, 401
        return _sign_in_page(
            request, next_path=next_path, email=email, errors={"form": message}, status=status
        )
    response = redirect(next_path)
    response.set_cookie(
        cookie_name(request),
        token,
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
        path="/",
    )
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    ctx = await context(request)
    if not isinstance(ctx, Context):
        return redirect("/sign-in")
    data = await form(request, ctx)
    if isinstance(data, Response):
        return data  # a forged sign-out changes nothing either
    svc = services(request)
    token = session_token(request)
    if token:
        await run(svc, svc.users.sign_out, token)
    response = redirect("/sign-in")
    response.delete_cookie(cookie_name(request), path="/")
    return response


@router.get("/")
async def home(request: Request) -> Response:
    ctx = await context(request)
    if not isinstance(ctx, Context):
        return ctx
    if not ctx.projects:
        return redirect("/account")
    return redirect(f"/p/{quote(ctx.projects[0][0].id, safe='')}")


@router.get("/projects")
async def open_project(request: Request, project: str = "") -> Response:
    return redirect(f"/p/{quote(project, safe='')}" if project else "/")


@router.get("/account")
async def account(request: Request, changed: bool = False) -> Response:
    ctx = await context(request)
    if not isinstance(ctx, Context):
        return ctx
    return render(ctx, "account.html", {"errors": {}, "changed": changed})


@router.post("/account/password")
@without_write_turn
async def change_password(request: Request) -> Response:
    ctx = await context(request)
    if not isinstance(ctx, Context):
        return ctx
    data = await form(request, ctx)
    if isinstance(data, Response):
        return data
    svc = services(request)
    token = session_token(request) or ""
    try:
        await run_hashing(
            svc.users.change_password,
            token,
            field(data, "current_password"),
            field(data, "password"),
        )
    except ApiError as exc:
        return render(
            ctx, "account.html", {"errors": field_errors(exc), "changed": False}, status=400
        )
    return redirect("/account?changed=true")
