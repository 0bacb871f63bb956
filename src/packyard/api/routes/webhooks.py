"""Webhooks at HCP's webhook service paths (2023-05-31), as ``hcp_notifications_webhook``
and the HCP SDK call them, plus Packyard's redelivery.

A webhook's resource name is ``webhook/project/<project>/geo/us/webhook/<name>``; the Go SDK
puts it in the path percent-encoded, slashes included, which the path guard allows under
``/2023-05-31/`` only (:class:`packyard.api.middleware.PathGuardMiddleware`): the routes below
match the decoded path, so literal slashes work too. Every answer is 200 JSON; errors are
``google.rpc.Status`` with HTTP 404 for a missing webhook (the provider's Read and Delete
rely on it).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request

from packyard.api.calls import run
from packyard.api.deps import CallerDep, ServicesDep, project_caller
from packyard.api.paging import page_params
from packyard.api.render import pagination, ts
from packyard.api.responses import JSONBody
from packyard.api.routes import PACKYARD_BASE
from packyard.api.wire import Body
from packyard.domain.models import Caller
from packyard.domain.paging import PageRequest
from packyard.domain.webhooks import GEO, Delivery, Webhook
from packyard.errors import not_found
from packyard.services.webhooks import WebhookView
from packyard.store.journal import subscriptions_to_json

WEBHOOK_BASE = "/2023-05-31/webhook/project/{project_id}"
HOOK = WEBHOOK_BASE + "/geo/{geo}/webhook/{name}"

router = APIRouter(tags=["webhooks"])


class CreateWebhookBody(Body):
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None
    config: dict[str, Any] | None = None
    subscriptions: list[Any] | None = None
    test_payload: dict[str, Any] | None = None


class UpdateWebhookBody(Body):
    update_mask: str | None = None
    webhook: dict[str, Any] | None = None
    test_payload: dict[str, Any] | None = None


class RenameWebhookBody(Body):
    name: str | None = None


async def webhook_caller(request: Request, project_id: str) -> Caller:
    """The principal acting on the project the path names (its own organization)."""
    return await project_caller(request, None, project_id)


WebhookCallerDep = Annotated[Caller, Depends(webhook_caller)]
WebhookPage = Annotated[PageRequest, Depends(page_params({"name", "created_at", "updated_at"}))]
DeliveryPage = Annotated[PageRequest, Depends(page_params({"seq", "created_at"}))]


def _geo(geo: str, project_id: str, name: str) -> None:
    if geo != GEO:
        raise not_found(f"Webhook {name!r} does not exist in project {project_id}.")


# --- rendering ---------------------------------------------------------------------------


def render_delivery(d: Delivery) -> dict[str, Any]:
    request = d.request or {}
    response = d.response or {}
    return {
        "id": d.id,
        "webhook_resource_id": d.webhook_id,
        "request": {
            "url": request.get("url", ""),
            "headers": request.get("headers") or {},
            "payload": d.payload,
            "sent_at": request.get("sent_at"),
        },
        "response": {
            "status_code": response.get("status_code", 0),
            "headers": response.get("headers") or {},
            "body": response.get("body", ""),
        },
        "retries": max(0, d.attempts - 1),
        # Packyard's own fields: HCP has no delivery state.
        "event_id": d.event_id,
        "state": d.state,
        "attempts": d.attempts,
        "next_attempt_at": ts(d.next_attempt_at) if d.state in ("queued", "running") else None,
        "last_error": d.last_error,
        "created_at": ts(d.created_at),
        "finished_at": ts(d.finished_at),
    }


def render_webhook(hook: Webhook, last_delivery: Delivery | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resource_id": hook.id,
        "resource_name": hook.resource_name,
        "name": hook.name,
        "config": {"url": hook.url},  # never the HMAC key
        "description": hook.description,
        "enabled": hook.enabled,
        "subscriptions": subscriptions_to_json(hook.subscriptions),
        "created_at": ts(hook.created_at),
        "updated_at": ts(hook.updated_at),
        "hmac_key_set": hook.has_hmac_key,
    }
    if last_delivery is not None:
        body["last_delivery"] = render_delivery(last_delivery)
    return body


def _one(hook: Webhook) -> JSONBody:
    return JSONBody({"webhook": render_webhook(hook)})


# --- HCP's webhook service ---------------------------------------------------------------


@router.post(WEBHOOK_BASE + "/webhooks", operation_id="WebhookService_CreateWebhook")
async def create_webhook(
    body: CreateWebhookBody, caller: WebhookCallerDep, svc: ServicesDep
) -> JSONBody:
    config = body.config or {}
    url, key = config.get("url"), config.get("hmac_key")
    # Verification may wait for the receiver: never on the event loop.
    hook = await anyio.to_thread.run_sync(
        partial(
            svc.webhooks.create,
            caller,
            body.name,
            url=url if isinstance(url, str) else None,
            hmac_key=key if isinstance(key, str) else None,
            description=body.description,
            enabled=body.enabled,
            subscriptions=body.subscriptions,
            test_payload=body.test_payload,
        )
    )
    return _one(hook)


@router.get(WEBHOOK_BASE + "/webhooks", operation_id="WebhookService_ListWebhooks")
async def list_webhooks(caller: WebhookCallerDep, svc: ServicesDep, page: WebhookPage) -> JSONBody:
    found = await run(svc, svc.webhooks.list, caller, page)
    return JSONBody(
        {
            "webhooks": [render_webhook(v.webhook, v.last_delivery) for v in found.items],
            "pagination": pagination(found),
        }
    )


@router.get(HOOK, operation_id="WebhookService_GetWebhook")
async def get_webhook(
    project_id: str, geo: str, name: str, caller: WebhookCallerDep, svc: ServicesDep
) -> JSONBody:
    _geo(geo, project_id, name)
    view: WebhookView = await run(svc, svc.webhooks.get, caller, name)
    return JSONBody({"webhook": render_webhook(view.webhook, view.last_delivery)})


@router.patch(HOOK, operation_id="WebhookService_UpdateWebhook")
async def update_webhook(
    project_id: str,
    geo: str,
    name: str,
    body: UpdateWebhookBody,
    caller: WebhookCallerDep,
    svc: ServicesDep,
) -> JSONBody:
    _geo(geo, project_id, name)
    hook = await anyio.to_thread.run_sync(
        svc.webhooks.update, caller, name, body.update_mask, body.webhook, body.test_payload
    )
    return _one(hook)


@router.patch(HOOK + "/name", operation_id="WebhookService_UpdateWebhookName")
async def rename_webhook(
    project_id: str,
    geo: str,
    name: str,
    body: RenameWebhookBody,
    caller: WebhookCallerDep,
    svc: ServicesDep,
) -> JSONBody:
    _geo(geo, project_id, name)
    hook = await run(svc, svc.webhooks.rename, caller, name, body.name)
    return _one(hook)


@router.delete(HOOK, operation_id="WebhookService_DeleteWebhook")
async def delete_webhook(
    project_id: str, geo: str, name: str, caller: WebhookCallerDep, svc: ServicesDep
) -> JSONBody:
    _geo(geo, project_id, name)
    await run(svc, svc.webhooks.delete, caller, name)
    return JSONBody({})


@router.get(HOOK + "/deliveries", operation_id="WebhookService_ListWebhookDeliveries")
async def list_webhook_deliveries(
    project_id: str,
    geo: str,
    name: str,
    caller: WebhookCallerDep,
    svc: ServicesDep,
    page: DeliveryPage,
) -> JSONBody:
    _geo(geo, project_id, name)
    found = await run(svc, svc.webhooks.deliveries_of, caller, name, page)
    return JSONBody(
        {
            "deliveries": [render_delivery(d) for d in found.items],
            "pagination": pagination(found),
        }
    )


# --- Packyard's own -----------------------------------------------------------------------


@router.post(
    PACKYARD_BASE + "/webhooks/{name}/deliveries/{delivery_id}/redeliver",
    operation_id="Packyard_RedeliverWebhookDelivery",
)
async def redeliver(name: str, delivery_id: str, caller: CallerDep, svc: ServicesDep) -> JSONBody:
    delivery = await run(svc, svc.webhooks.redeliver, caller, name, delivery_id)
    return JSONBody({"delivery": render_delivery(delivery)})
