"""What every console page shares: the signed-in person, the project they act on, CSRF,
rendering and the answers for errors.

Pages are server-rendered HTML that works without JavaScript. A page handler names its template
and one function that loads what the template shows, through the same services as the API,
with a :class:`Caller` made from the session: a person's role means on a page exactly what it
means on the API.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from packyard.api.calls import run
from packyard.domain.access import (
    bucket_role,
    can_write_bucket,
    writable_buckets,
)
from packyard.domain.enums import Role
from packyard.domain.models import Caller, Project, WebSession
from packyard.errors import ApiError, Code, not_found, permission_denied
from packyard.services.container import Services
from packyard.services.users import csrf_matches
from packyard.web import filters, refusals
from packyard.web.filters import role_label

SESSION_COOKIE = "packyard-session"
SECURE_SESSION_COOKIE = "__Host-packyard-session"  # Secure, Path=/, no Domain: TLS only
SIGN_IN_COOKIE = "packyard-sign-in"  # the CSRF token of the sign-in form (no session yet)
CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HTML_HEADERS = {"content-security-policy": CSP, "cache-control": "no-store"}


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("packyard.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    filters.install(env)
    return env


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


def is_secure(request: Request) -> bool:
    public: str | None = getattr(request.app.state, "public_url", None)
    if public:
        return public.startswith("https://")
    return request.url.scheme == "https"


def cookie_name(request: Request) -> str:
    return SECURE_SESSION_COOKIE if is_secure(request) else SESSION_COOKIE


def session_token(request: Request) -> str | None:
    return request.cookies.get(cookie_name(request))


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return default
    return target


def redirect(path: str) -> Response:
    """A 303 to a path on this site (relative: never built from the Host header)."""
    return RedirectResponse(local_path(path), status_code=303, headers=HTML_HEADERS)


def to_sign_in(request: Request, back: str | None = None) -> Response:
    here = back or request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(f"/sign-in?next={quote(here, safe='')}")


@dataclass(frozen=True, slots=True)
class Context:
    """The person and, on project pages, the project and their role there."""

    request: Request
    session: WebSession
    projects: list[tuple[Project, Role | None]]
    caller: Caller | None = None

    @property
    def project(self) -> Project | None:
        if self.caller is None:
            return None
        return next((p for p, _ in self.projects if p.id == self.caller.project_id), None)

    @property
    def can_write(self) -> bool:
        """Whether they may change the project itself (create buckets, the registry, the run
        task): a project role only. A bucket's pages ask :meth:`can_write_bucket`."""
        return self.caller is not None and self.caller.can_write

    def can_write_bucket(self, bucket_id: str) -> bool:
        """Whether they may change one bucket (its channels and versions): their project role
        or their grant on it, whichever is higher."""
        return self.caller is not None and can_write_bucket(self.caller, bucket_id)

    @property
    def is_admin(self) -> bool:
        return self.caller is not None and self.caller.role is Role.ADMIN

    @property
    def role_label(self) -> str:
        """Their role on the project as the header shows it."""
        return role_label(self.caller.role if self.caller else None)

    def url(self, *parts: str) -> str:
        """A path inside the current project: ``ctx.url("buckets", name)``."""
        assert self.caller is not None
        return project_url(self.caller, *parts)


def project_url(caller: Caller, *parts: str) -> str:
    """A path inside the caller's project, for code that has only the caller (a loader)."""
    return "/p/" + "/".join(quote(p, safe="") for p in (caller.project_id, *parts))


def render(
    ctx: Context | None,
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    status: int = 200,
    request: Request | None = None,
) -> HTMLResponse:
    req = ctx.request if ctx is not None else request
    assert req is not None
    body = (
        environment()
        .get_template(template)
        .render(
            ctx=ctx,
            csrf_token=ctx.session.csrf_token if ctx is not None else "",
            path=req.url.path,
            **(values or {}),
        )
    )
    return HTMLResponse(body, status_code=status, headers=HTML_HEADERS)


def error_page(ctx: Context | None, request: Request, error: ApiError) -> HTMLResponse:
    refusals.audit_refusal(request, ctx.caller if ctx is not None else None, error)
    if error.code is Code.ABORTED:
        # A missing version: code 10 on the API, which Packer needs; to a person, not found.
        error = not_found(error.message)
    status = {Code.NOT_FOUND: 404, Code.PERMISSION_DENIED: 403}.get(error.code, error.http_status)
    return render(
        ctx, "error.html", {"error": error, "status": status}, status=status, request=request
    )


async def context(request: Request, project_id: str | None = None) -> Context | Response:
    """The signed-in person (and their caller on ``project_id``), or the answer to send
    instead: the sign-in page for a missing or ended session, a 404 page for a project
    they have no role on."""
    svc = services(request)
    session = await run(svc, svc.users.session, session_token(request))
    if session is None:
        return to_sign_in(request)
    projects = await run(svc, svc.users.projects, session.user)
    ctx = Context(request=request, session=session, projects=projects)
    if project_id is None:
        return ctx
    try:
        caller = await run(svc, svc.users.caller, session, project_id)
    except ApiError as exc:
        return error_page(ctx, request, exc)
    return Context(request=request, session=session, projects=projects, caller=caller)


async def page(
    request: Request,
    project_id: str,
    template: str,
    load: Callable[[Services, Caller], Mapping[str, Any]],
) -> Response:
    """A project page: who is asking, what the template shows (one service call), or the
    error page for what went wrong."""
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return await show(ctx, template, load)


async def show(
    ctx: Context,
    template: str,
    load: Callable[[Services, Caller], Mapping[str, Any]],
    *,
    status: int = 200,
    **values: Any,
) -> Response:
    """``template`` with what ``load`` returns (one service call) and ``values``; input the
    page could not use (non-empty ``errors``, shown next to its field) answers 400."""
    svc, caller = acting(ctx)
    try:
        loaded = await run(svc, load, svc, caller)
    except ApiError as exc:
        return error_page(ctx, ctx.request, exc)
    shown = {**loaded, **values}
    if status == 200 and shown.get("errors"):
        status = 400
    return render(ctx, template, shown, status=status)


def acting(ctx: Context) -> tuple[Services, Caller]:
    """The services and the caller a handler calls them with."""
    assert ctx.caller is not None
    return services(ctx.request), ctx.caller


async def writer(
    request: Request, project_id: str, bucket: str | None = None
) -> Context | Response:
    """The signed-in person who may change the project (or, given ``bucket``, that bucket),
    or the answer instead (sign-in, 404, or the 403 page: such a page or change is not
    theirs to ask for)."""
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    svc, caller = acting(ctx)
    if caller.can_write:
        return ctx
    try:
        await run(svc, check_writer, svc, caller, bucket)
    except ApiError as exc:
        if request.method == "POST" and not await _genuine(request, ctx):
            refusals.not_audited(request)  # refused before its CSRF token was checked
        return error_page(ctx, request, exc)
    return ctx


async def _genuine(request: Request, ctx: Context) -> bool:
    token = (await request.form()).get("csrf_token")
    return csrf_matches(ctx.session, token if isinstance(token, str) else None)


def check_writer(svc: Services, caller: Caller, bucket: str | None) -> None:
    """Refuse (403) who may not change the project or, given ``bucket``, that bucket (404 for
    a bucket they cannot see). The bucket is read only for someone whose grants could allow
    it: a project writer or a person with no write grant at all is decided without it."""
    if caller.can_write:
        return
    if bucket is None or writable_buckets(caller) is False:
        raise permission_denied(
            f"{caller.name} has {_role_phrase(caller.role)} on this project and cannot "
            + ("make changes." if bucket is None else f"change bucket {bucket[:64]}.")
        )
    found = svc.buckets.get(caller, bucket)
    if not can_write_bucket(caller, found.id):
        role = _role_phrase(bucket_role(caller, found.id))
        raise permission_denied(
            f"{caller.name} has {role} on bucket {found.name} and cannot change it."
        )


def _role_phrase(role: Role | None) -> str:
    return f"the {role.value} role" if role is not None else "no role"


async def submitted(
    request: Request, project_id: str, *, writers_only: bool = True, bucket: str | None = None
) -> tuple[Context, FormData] | Response:
    """A signed-in person's form on the project with a valid CSRF token (a writer's of the
    project, or of ``bucket`` when given, unless ``writers_only`` is off: the services then
    decide), or the answer instead."""
    if writers_only:
        ctx = await writer(request, project_id, bucket)
    else:
        ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    data = await form(request, ctx)
    if isinstance(data, Response):
        return data
    refusals.answering(request, ctx.caller)
    return ctx, data


async def form(request: Request, ctx: Context) -> FormData | Response:
    """The submitted form of a signed-in person, or a 403 page when its CSRF token is not
    the session's (a forged cross-site request)."""
    data = await request.form()
    token = data.get("csrf_token")
    if not csrf_matches(ctx.session, token if isinstance(token, str) else None):
        refusals.not_audited(request)
        return error_page(
            ctx,
            request,
            ApiError(
                Code.PERMISSION_DENIED,
                "This form has expired or did not come from this site; reload the page and "
                "try again.",
            ),
        )
    return data


def field(data: FormData, name: str) -> str:
    value = data.get(name)
    return value if isinstance(value, str) else ""


def checked(data: FormData, name: str) -> bool:
    """Whether a checkbox was ticked."""
    return field(data, name) in ("yes", "on", "true")


def field_errors(error: ApiError, *, at: str = "form") -> dict[str, str]:
    """``{field: message}`` from an error's ``google.rpc.BadRequest`` detail, to show each
    message next to its field; a message about no field goes next to ``at`` (a refusal of
    the whole request stays at the top of the form)."""
    refusals.refused_form(error)
    found: dict[str, str] = {}
    for detail in error.details:
        for violation in detail.get("field_violations", []) or []:
            name = str(violation.get("field", "")) or "form"
            found.setdefault(name.removeprefix("body."), str(violation.get("description", "")))
    if found:
        return found
    return {"form" if error.code is Code.PERMISSION_DENIED else at: error.message}


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


__all__ = [
    "CSP",
    "Context",
    "acting",
    "check_writer",
    "checked",
    "context",
    "error_page",
    "field",
    "field_errors",
    "form",
    "page",
    "project_url",
    "redirect",
    "render",
    "role_label",
    "show",
    "submitted",
    "writer",
]
