"""Console pages: a project's webhooks and their delivery logs.

Contributors and admins of the project read them (the list, each webhook's settings and its
deliveries); only its admins create, enable, disable, delete and redeliver. The services
decide (:class:`packyard.services.webhooks.WebhookService`), so a viewer gets the 403 page and
a forged form changes nothing.

An HMAC key is write-only: the create form takes it in a password field, and no page shows it
again, not even in the form returned with an error (only whether a webhook has one). Creating
an enabled webhook or enabling one sends the verification event first, which may wait for the
receiver's whole timeout: those calls run on a worker thread, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

import anyio.to_thread
import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from packyard.api.calls import run
from packyard.domain.enums import Role
from packyard.domain.events import VERSION_SOURCE, WILDCARD, EventAction, Subscription
from packyard.domain.models import Caller
from packyard.domain.paging import PageRequest
from packyard.domain.webhooks import FINISHED, Delivery, Webhook
from packyard.errors import ApiError, Code, invalid, permission_denied
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

LIST_PAGE = 100
DELIVERY_PAGE = 20
ALL_EVENTS = "all"
ACTIONS = tuple(EventAction)

# What a finished change says on the page it returns to (``?done=…``): fixed texts only.
DONE = {
    "created": "Created the webhook: its URL answered the verification event, and it is enabled.",
    "created-disabled": "Created the webhook, disabled: it sends nothing until it is enabled.",
    "enabled": "Enabled the webhook: its URL answered the verification event; deliveries "
    "queued meanwhile go on.",
    "disabled": "Disabled the webhook: its deliveries wait until it is enabled again.",
    "deleted": "Deleted the webhook and its delivery log.",
    "redelivered": "The delivery is queued again: it is sent with the same event ID.",
}

# The service's field names → the create form's controls.
_CREATE_FIELDS = {
    "name": "webhook-name",
    "config.url": "webhook-url",
    "config.hmac_key": "webhook-key",
    "description": "webhook-description",
    "events": "webhook-events",
    "subscriptions": "webhook-events",
    "form": "webhook-form",
}


# --- what the pages show -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    """A webhook in the list, with its newest delivery."""

    webhook: Webhook
    events: str
    latest: Shown | None


@dataclass(frozen=True, slots=True)
class Shown:
    """One delivery as the log shows it."""

    delivery: Delivery
    action: str
    sent_at: datetime | None
    status_code: int | None
    url: str
    request_headers: list[tuple[str, str]]
    payload: str  # pretty JSON
    response_headers: list[tuple[str, str]]
    response_body: str

    @property
    def finished(self) -> bool:
        return self.delivery.state in FINISHED


def _event_label(source: str, action: str) -> str:
    if source == WILDCARD and action == WILDCARD:
        return "all events"
    if source == VERSION_SOURCE:
        return "all version events" if action == WILDCARD else action
    return f"{action if action != WILDCARD else 'all'} of {source}"


def events_summary(subscriptions: Sequence[Subscription]) -> str:
    """``create, complete, revoke`` or ``all version events`` (a subscription about one
    resource says which)."""
    parts: list[str] = []
    for sub in subscriptions:
        labels = list(dict.fromkeys(_event_label(e.source, e.action) for e in sub.events))
        text = ", ".join(labels) or "no events"
        if sub.resource_id:
            text += f" of {sub.resource_id}"
        parts.append(text)
    return "; ".join(parts) or "no events"


def _headers(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return []
    return [(str(k), str(v)) for k, v in value.items()]


def _sent_at(request: Mapping[str, Any]) -> datetime | None:
    raw = request.get("sent_at")
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        return None


def shown(delivery: Delivery) -> Shown:
    request = delivery.request or {}
    response = delivery.response or {}
    status = response.get("status_code")
    action = delivery.payload.get("event_action")
    return Shown(
        delivery=delivery,
        action=action if isinstance(action, str) else "",
        sent_at=_sent_at(request),
        status_code=status if isinstance(status, int) else None,
        url=str(request.get("url", "")),
        request_headers=_headers(request.get("headers")),
        payload=orjson.dumps(delivery.payload, option=orjson.OPT_INDENT_2).decode(),
        response_headers=_headers(response.get("headers")),
        response_body=str(response.get("body", "")),
    )


def _list_loader(page: PageRequest) -> Callable[[Services, Caller], Mapping[str, Any]]:
    def load(svc: Services, caller: Caller) -> Mapping[str, Any]:
        found = svc.webhooks.list(caller, page)
        rows = [
            Listed(
                v.webhook,
                events_summary(v.webhook.subscriptions),
                shown(v.newest) if v.newest else None,
            )
            for v in found.items
        ]
        return {"webhooks": rows, "next_token": found.next_token}

    return load


def _detail_loader(name: str, page: PageRequest) -> Callable[[Services, Caller], Mapping[str, Any]]:
    def load(svc: Services, caller: Caller) -> Mapping[str, Any]:
        view = svc.webhooks.get(caller, name)
        log = svc.webhooks.deliveries_of(caller, name, page)
        return {
            "webhook": view.webhook,
            "events": [events_summary((s,)) for s in view.webhook.subscriptions],
            "last_delivered": view.last_delivery,
            "deliveries": [shown(d) for d in log.items],
            "next_token": log.next_token,
        }

    return load


def _with_query(base: str, **params: str) -> str:
    kept = {k: v for k, v in params.items() if v}
    return f"{base}?{urlencode(kept)}" if kept else base


async def _list(
    ctx: Context,
    *,
    page: str = "",
    errors: Mapping[str, str] | None = None,
    kept: Mapping[str, Any] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    here = ctx.url("webhooks")
    return await show(
        ctx,
        "webhooks.html",
        _list_loader(PageRequest(size=LIST_PAGE, next_token=page or None)),
        status=status,
        here=here,
        page_url=lambda token: _with_query(here, page=token),
        first_url=here if page else None,
        actions=ACTIONS,
        all_events=ALL_EVENTS,
        errors=dict(errors or {}),
        kept=dict(kept or {}),
        notice=notice,
    )


async def _detail(
    ctx: Context,
    name: str,
    *,
    page: str = "",
    errors: Mapping[str, str] | None = None,
    notice: str = "",
    status: int = 200,
) -> Response:
    here = ctx.url("webhooks", name)
    return await show(
        ctx,
        "webhook.html",
        _detail_loader(name, PageRequest(size=DELIVERY_PAGE, next_token=page or None)),
        status=status,
        here=here,
        page_url=lambda token: _with_query(here, page=token),
        first_url=here if page else None,
        errors=dict(errors or {}),
        notice=notice,
    )


@router.get("/p/{project_id}/webhooks")
async def webhooks_page(
    request: Request, project_id: str, page: str = "", done: str = ""
) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return await _list(ctx, page=page, notice=DONE.get(done, ""))


@router.get("/p/{project_id}/webhooks/{name}")
async def webhook_page(
    request: Request, project_id: str, name: str, page: str = "", done: str = ""
) -> Response:
    ctx = await context(request, project_id)
    if not isinstance(ctx, Context):
        return ctx
    return await _detail(ctx, name, page=page, notice=DONE.get(done, ""))


# --- changing ----------------------------------------------------------------------------


def subscriptions_from(chosen: Sequence[str]) -> list[dict[str, Any]]:
    """The subscription the form's event checkboxes make (``all``: every version event)."""
    if ALL_EVENTS in chosen:
        actions = [WILDCARD]
    else:
        known = {a.value for a in ACTIONS}
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise invalid(f"Unknown event {unknown[0][:64]!r}.", field="events")
        actions = [a.value for a in ACTIONS if a.value in chosen]
    if not actions:
        raise invalid("Choose the events to send: all, or at least one.", field="events")
    return [{"events": [{"source": VERSION_SOURCE, "action": a} for a in actions]}]


def _create(
    svc: Services,
    caller: Caller,
    *,
    name: str,
    url: str,
    key: str,
    description: str,
    events: list[str],
    enabled: bool,
) -> Webhook:
    return svc.webhooks.create(
        caller,
        name,
        url=url,
        hmac_key=key,
        description=description,
        enabled=enabled,
        subscriptions=subscriptions_from(events),
    )


def _refusal_status(error: ApiError) -> int:
    return error.http_status if 400 <= error.http_status < 500 else 400


@router.post("/p/{project_id}/webhooks")
async def create_webhook(request: Request, project_id: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    kept: dict[str, Any] = {
        "name": field(data, "name").strip(),
        "url": field(data, "url").strip(),
        "description": field(data, "description"),
        "events": [e for e in data.getlist("events") if isinstance(e, str)],
        "enabled": checked(data, "enabled"),
    }
    svc, caller = acting(ctx)
    try:
        # verification may wait for the receiver: never on the event loop
        hook = await anyio.to_thread.run_sync(
            partial(
                _create,
                svc,
                caller,
                name=kept["name"],
                url=kept["url"],
                key=field(data, "hmac_key"),
                description=kept["description"],
                events=kept["events"],
                enabled=kept["enabled"],
            )
        )
    except ApiError as exc:
        if exc.code is Code.PERMISSION_DENIED:
            return error_page(ctx, request, exc)
        at = {Code.ALREADY_EXISTS: "name", Code.FAILED_PRECONDITION: "config.url"}
        found = field_errors(exc, at=at.get(exc.code, "form"))
        errors: dict[str, str] = {}
        for name, message in found.items():
            control = _CREATE_FIELDS.get(name) or _CREATE_FIELDS.get(
                name.split("[")[0].split(".")[0], "webhook-form"
            )
            errors.setdefault(control, message)
        return await _list(ctx, errors=errors, kept=kept, status=_refusal_status(exc))
    done = "created" if hook.enabled else "created-disabled"
    return redirect(_with_query(ctx.url("webhooks", hook.name), done=done))


async def _again(ctx: Context, name: str, back: str, error: ApiError, where: str) -> Response:
    """The page the form came from (``back``: the list or the webhook's page) with the
    refusal next to its control; the 403/404 page for who may not or what is gone."""
    if error.code in (Code.PERMISSION_DENIED, Code.NOT_FOUND):
        return error_page(ctx, ctx.request, error)
    errors = {where: next(iter(field_errors(error, at=where).values()))}
    if back == "detail":
        return await _detail(ctx, name, errors=errors, status=_refusal_status(error))
    return await _list(ctx, errors=errors, status=_refusal_status(error))


def _switch(svc: Services, caller: Caller, name: str, enabled: bool) -> Webhook:
    return svc.webhooks.update(caller, name, "enabled", {"enabled": enabled})


async def _set_enabled(request: Request, project_id: str, name: str, enabled: bool) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    back = field(data, "back")
    svc, caller = acting(ctx)
    try:
        await anyio.to_thread.run_sync(_switch, svc, caller, name, enabled)
    except ApiError as exc:
        return await _again(ctx, name, back, exc, f"status-{name}")
    done = "enabled" if enabled else "disabled"
    if back == "detail":
        return redirect(_with_query(ctx.url("webhooks", name), done=done))
    return redirect(_with_query(ctx.url("webhooks"), done=done) + f"#webhook-{name}")


@router.post("/p/{project_id}/webhooks/{name}/enable")
async def enable_webhook(request: Request, project_id: str, name: str) -> Response:
    return await _set_enabled(request, project_id, name, True)


@router.post("/p/{project_id}/webhooks/{name}/disable")
async def disable_webhook(request: Request, project_id: str, name: str) -> Response:
    return await _set_enabled(request, project_id, name, False)


def _delete(svc: Services, caller: Caller, name: str, typed: str) -> None:
    """Delete once the name was typed exactly (the page's JavaScript waits for it too; this
    is the check that counts). A wrong name is a typing error for an admin only: anyone else
    is refused as the service would refuse them."""
    if typed != name:
        svc.webhooks.get(caller, name)  # 403 for a viewer, 404 for a webhook that is gone
        if caller.role is not Role.ADMIN:
            role = f"the {caller.role.value} role" if caller.role else "no role"
            raise permission_denied(
                f"{caller.name} has {role} on this project and cannot change its webhooks."
            )
        raise invalid(f"Type the webhook's name, {name}, to delete it.", field="confirm")
    svc.webhooks.delete(caller, name)


@router.post("/p/{project_id}/webhooks/{name}/delete")
async def delete_webhook(request: Request, project_id: str, name: str) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, data = got
    svc, caller = acting(ctx)
    try:
        await run(svc, _delete, svc, caller, name, field(data, "confirm").strip())
    except ApiError as exc:
        return await _again(ctx, name, field(data, "back"), exc, f"delete-{name}")
    return redirect(_with_query(ctx.url("webhooks"), done="deleted"))


@router.post("/p/{project_id}/webhooks/{name}/deliveries/{delivery_id}/redeliver")
async def redeliver_webhook(
    request: Request, project_id: str, name: str, delivery_id: str
) -> Response:
    got = await submitted(request, project_id, writers_only=False)
    if isinstance(got, Response):
        return got
    ctx, _ = got
    svc, caller = acting(ctx)
    try:
        await run(svc, svc.webhooks.redeliver, caller, name, delivery_id)
    except ApiError as exc:
        return await _again(ctx, name, "detail", exc, f"redeliver-{delivery_id}")
    here = _with_query(ctx.url("webhooks", name), done="redelivered")
    return redirect(f"{here}#delivery-{delivery_id}")
