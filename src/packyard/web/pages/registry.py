"""Console pages: the registry (buckets with search, filters and pages), one bucket (its
channels, lineage and ready-to-paste data sources), finding an image by its id, and how to
connect a client to this project."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.calls import run
from packyard.clientenv import as_shell, client_env
from packyard.config import Advertised
from packyard.domain.access import may_manage_bucket_access
from packyard.domain.enums import Role
from packyard.domain.models import Build, Caller, Version
from packyard.domain.overview import BucketOverview, BucketQuery
from packyard.domain.paging import PageRequest
from packyard.errors import ApiError, Code, permission_denied
from packyard.services.access import AccessEntry
from packyard.services.container import Services
from packyard.web import hcl
from packyard.web.console import (
    Context,
    acting,
    context,
    error_page,
    field_errors,
    redirect,
    render,
    services,
)

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_PAGE_SIZE = 100
FIND_PAGE_SIZE = 50
MAX_IMAGE_ID = 1024  # what the artifact search accepts
MAX_CHOICE = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
CLIENT_ID_PLACEHOLDER = "<client id>"
CLIENT_SECRET_PLACEHOLDER = "<client secret>"  # noqa: S105 - a placeholder, never a secret


def _page_size(raw: str) -> int:
    try:
        size = int(raw)
    except ValueError:
        return PAGE_SIZE
    return min(max(size, 1), MAX_PAGE_SIZE)


def _link(base: str, **params: str) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{base}?{urlencode(kept)}" if kept else base


# --- registry home ---------------------------------------------------------------------


@router.get("/p/{project_id}/")
async def registry_home_slash(request: Request, project_id: str) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return redirect(f"/p/{quote(project_id, safe='')}{query}")


@router.get("/p/{project_id}")
async def registry_home(
    request: Request,
    project_id: str,
    q: str = "",
    label: str = "",
    sort: str = "",
    page: str = "",
    size: str = "",
) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    assert ctx.caller is not None
    entered = {"q": q, "label": label, "sort": sort or "name"}
    values: dict[str, Any] = {"entered": entered, "errors": {}, "rows": [], "filtered": True}
    values.update(next_url=None, first_url=None)
    try:
        query = BucketQuery.parse(q, label, sort)
    except ApiError as exc:
        values["errors"] = field_errors(exc)
        return render(ctx, "registry_home.html", values, status=400)
    chosen = _page_size(size) if size else PAGE_SIZE
    svc = services(request)
    try:
        result = await run(
            svc,
            svc.buckets.search_page,
            ctx.caller,
            query,
            PageRequest(size=chosen, next_token=page or None),
        )
    except ApiError as exc:
        return error_page(ctx, request, exc)
    keep = {
        "q": query.text,
        "label": label.strip(),
        "sort": "" if query.sort == "name" else query.sort,
    }
    keep["size"] = str(chosen) if size else ""
    values.update(
        rows=result.items,
        filtered=query.filtered,
        next_url=_link(ctx.url(), **keep, page=result.next_token) if result.next_token else None,
        first_url=_link(ctx.url(), **keep) if page else None,
    )
    return render(ctx, "registry_home.html", values)


# --- one bucket --------------------------------------------------------------------------


@dataclass(slots=True)
class DataSourceView:
    """The "Use as a data source" form and what it produces."""

    source: str = ""  # the picker's value: "channel:NAME" or "version:FINGERPRINT"
    version: Version | None = None
    channel_name: str | None = None
    channel_restricted: bool = False
    platforms: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    platform: str = ""
    region: str = ""
    notes: dict[str, str] = field(default_factory=dict)  # field → why another value is shown
    packer: str = ""
    terraform: str = ""

    @property
    def revoked(self) -> bool:
        return self.version is not None and self.version.revoke_at is not None


def _choice(source: str, channel: str, version: str) -> tuple[str | None, str | None, str]:
    """(channel, fingerprint) from the picker's ``source`` (or plain ``channel``/``version``
    parameters, for links); the third value is an error for the picker, or ""."""
    raw = source.strip()
    if not raw:
        if version.strip():
            raw = "version:" + version.strip()
        elif channel.strip():
            raw = "channel:" + channel.strip()
        else:
            return None, None, ""
    kind, _, name = raw.partition(":")
    if len(raw) > MAX_CHOICE or _CONTROL.search(raw) or kind not in ("channel", "version"):
        return None, None, "Pick a channel or a version from the list."
    if not name:
        return None, None, "Pick a channel or a version from the list."
    return (name, None, "") if kind == "channel" else (None, name, "")


def _regions(builds: list[Build], platform: str) -> list[str]:
    found: list[str] = []
    for b in builds:
        if b.platform == platform:
            found += [a.region for a in b.artifacts if a.region not in found]
    return found


def data_source_view(
    bucket: str, found: BucketOverview, platform: str, region: str
) -> DataSourceView:
    """The platforms and regions the resolved version has, the ones picked (the first when
    the asked one does not exist there, with a note), and the HCL for them."""
    view = DataSourceView()
    source = found.source
    version = source.version
    if source.channel is not None:
        view.source = f"channel:{source.channel.name}"
        view.channel_name = source.channel.name
        view.channel_restricted = source.channel.restricted
    elif version is not None:
        view.source = f"version:{version.fingerprint}"
    if version is None:
        return view
    view.version = version
    with_images = [b for b in version.builds if b.platform and b.artifacts]
    view.platforms = list(dict.fromkeys(b.platform for b in with_images))
    if not view.platforms:
        view.notes["platform"] = f"{version.name} has no image to read."
        return view
    view.platform = platform if platform in view.platforms else view.platforms[0]
    if platform and platform != view.platform:
        view.notes["platform"] = f"{version.name} has no image for {platform}."
    view.regions = _regions(with_images, view.platform)
    view.region = region if region in view.regions else view.regions[0]
    if region and region != view.region:
        view.notes["region"] = f"{version.name} has no {view.platform} image in {region}."
    channel = view.channel_name
    fingerprint = None if channel else version.fingerprint
    for name, write in (
        ("packer", hcl.packer_data_sources),
        ("terraform", hcl.terraform_data_sources),
    ):
        text = write(
            bucket,
            channel=channel,
            fingerprint=fingerprint,
            platform=view.platform,
            region=view.region,
        )
        setattr(view, name, text)
    return view


@dataclass(frozen=True, slots=True)
class AccessForm:
    """The bucket page's access section as a change left it: what went wrong (next to its
    control), what the person typed, and the notice of a finished change (``?done=&id=``)."""

    errors: Mapping[str, str] = field(default_factory=dict)
    kept: Mapping[str, str] = field(default_factory=dict)
    done: str = ""
    member: str = ""


ACCESS_DONE = {
    "granted": "{name} now has the {role} role on this bucket.",
    "revoked": "The grant was removed: only the project's roles apply to that member here.",
}


def _bucket_loader(
    bucket: str, channel: str | None, fingerprint: str | None
) -> Callable[[Services, Caller], dict[str, Any]]:
    def load(svc: Services, caller: Caller) -> dict[str, Any]:
        found = svc.buckets.overview(caller, bucket, channel=channel, fingerprint=fingerprint)
        grants = None
        if may_manage_bucket_access(caller, found.bucket.id):
            org, project = caller.organization_id, caller.project_id
            grants = svc.access.list(caller, org, project, found.bucket.name)
        return {"found": found, "grants": grants}

    return load


def _access_notice(form: AccessForm, grants: list[AccessEntry]) -> str:
    text = ACCESS_DONE.get(form.done)
    if text is None:
        return ""
    held = [g for g in grants if g.member.id == form.member]
    if form.done == "granted" and not held:
        return ""
    top = max(held, key=lambda g: g.role.rank) if held else None
    return text.format(name=top.name if top else "", role=top.role.value if top else "")


async def bucket_view(
    ctx: Context,
    bucket: str,
    *,
    source: str = "",
    channel: str = "",
    version: str = "",
    platform: str = "",
    region: str = "",
    access: AccessForm | None = None,
) -> Response:
    """The bucket page; with ``access`` as a change of its grants left it (the 403 page for
    someone who may not manage them: they were never offered the form)."""
    access = access or AccessForm()
    wanted_channel, wanted_fingerprint, problem = _choice(source, channel, version)
    svc, caller = acting(ctx)
    try:
        loaded = await run(
            svc, _bucket_loader(bucket, wanted_channel, wanted_fingerprint), svc, caller
        )
    except ApiError as exc:
        return error_page(ctx, ctx.request, exc)
    found: BucketOverview = loaded["found"]
    grants: list[AccessEntry] | None = loaded["grants"]
    if access.errors and grants is None:
        return error_page(
            ctx,
            ctx.request,
            permission_denied(
                f"Only the project's admins and the admins of bucket {found.bucket.name} manage "
                "its access."
            ),
        )
    errors = {"source": problem or found.source.error or ""}
    # Nothing serving a version by default is a fact, not a mistake in the form.
    asked = bool(problem or wanted_channel or wanted_fingerprint)
    view = data_source_view(found.bucket.name, found, platform.strip(), region.strip())
    values = {
        "o": found,
        "b": found.bucket,
        "ds": view,
        "errors": {k: v for k, v in errors.items() if v},
        "out_of_date": [p for p in found.parents if p.status.value == "OUT_OF_DATE"],
        "grants": grants,
        "grant_roles": tuple(Role),
        "access_errors": dict(access.errors),
        "access_kept": dict(access.kept),
        "access_notice": _access_notice(access, grants or []),
    }
    status = 400 if (asked and errors["source"]) or access.errors else 200
    return render(ctx, "bucket.html", values, status=status)


@router.get("/p/{project_id}/buckets/{bucket}")
async def bucket_page(
    request: Request,
    project_id: str,
    bucket: str,
    source: str = "",
    channel: str = "",
    version: str = "",
    platform: str = "",
    region: str = "",
    done: str = "",
    id: str = "",
) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return await bucket_view(
        ctx,
        bucket,
        source=source,
        channel=channel,
        version=version,
        platform=platform,
        region=region,
        access=AccessForm(done=done, member=id),
    )


# --- find an image -----------------------------------------------------------------------


@router.get("/p/{project_id}/find")
async def find_image(request: Request, project_id: str, id: str = "", page: str = "") -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    assert ctx.caller is not None
    wanted = id.strip()
    values: dict[str, Any] = {"wanted": id, "hits": None, "errors": {}, "next_url": None}
    if len(wanted) > MAX_IMAGE_ID:
        values["errors"] = {"id": f"An image id has at most {MAX_IMAGE_ID:,} characters."}
    elif _CONTROL.search(wanted):
        values["errors"] = {"id": "An image id cannot contain control characters."}
    if values["errors"]:
        return render(ctx, "find.html", values, status=400)
    if not wanted:
        return render(ctx, "find.html", values)
    svc = services(request)
    try:
        result = await run(
            svc,
            svc.search.external_artifact,
            ctx.caller,
            wanted,
            platform=None,
            region=None,
            page=PageRequest(size=FIND_PAGE_SIZE, next_token=page or None),
        )
    except ApiError as exc:
        if exc.code is not Code.INVALID_ARGUMENT or page:
            return error_page(ctx, request, exc)
        values["errors"] = {"id": next(iter(field_errors(exc).values()))}
        return render(ctx, "find.html", values, status=400)
    values["hits"] = [
        (
            hit,
            [a.region for a in hit.build.artifacts if a.external_identifier == wanted],
        )
        for hit in result.items
    ]
    if result.next_token:
        values["next_url"] = _link(ctx.url("find"), id=wanted, page=result.next_token)
    return render(ctx, "find.html", values)


# --- connect a client --------------------------------------------------------------------


def advertised(request: Request) -> Advertised | None:
    """How clients reach this server: what ``packyard serve`` recorded (as ``packyard env``
    prints it), else the public URL the app was given; ``None`` when neither is known (an
    app made in-process). Never the request's Host header."""
    recorded: Advertised | None = getattr(request.app.state, "advertised", None)
    if recorded is not None:
        return recorded
    public: str | None = getattr(request.app.state, "public_url", None)
    if public:
        parts = urlsplit(public)
        return Advertised(address=parts.netloc, tls=parts.scheme == "https", self_signed=False)
    return None


@router.get("/p/{project_id}/connect")
async def connect(request: Request, project_id: str) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    assert ctx.caller is not None
    server = advertised(request) or Advertised(
        address="packyard.example.com:8443", tls=True, self_signed=False
    )
    env = client_env(
        server,
        client_id=CLIENT_ID_PLACEHOLDER,
        client_secret=CLIENT_SECRET_PLACEHOLDER,
        organization_id=ctx.caller.organization_id,
        project_id=ctx.caller.project_id,
    )
    values = {
        "server": server,
        "known": advertised(request) is not None,
        "shell": as_shell(env),
        "packer_block": hcl.packer_registry_block(),
        "terraform_block": hcl.terraform_provider_block(ctx.caller.project_id),
    }
    return render(ctx, "connect.html", values)
