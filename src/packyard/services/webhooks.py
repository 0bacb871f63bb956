"""A project's webhooks, as HCP's webhook service (2023-05-31) manages them.

Who may do what: webhooks are project settings, and their URLs and deliveries say much
about the registry, so a project's contributors and admins see them and only its admins
change them (create, update, rename, delete, redeliver). Viewers and members holding only
bucket grants get 403/7.

Verification (HCP's): creating an enabled webhook, enabling one, or changing the URL or HMAC
key of an enabled one first POSTs a signed verification event to the URL; any answer but 2xx
refuses the change with 400/9 "Error verifying webhook configuration: …" and nothing is
stored. A create without ``enabled`` stores the webhook enabled if verification succeeded,
else disabled. Verification happens before the write transaction (it may take the whole
request timeout), so the write checks that nobody changed the webhook meanwhile.

Every change is audited in its own transaction (:func:`packyard.services.journal.record`);
a refusal to an authenticated API caller is audited as FAILED by the API
(:mod:`packyard.api.audit_failures`), as for every other write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy.exc import IntegrityError

from packyard.domain.enums import Role
from packyard.domain.events import (
    EVENT_VERSION,
    VERIFICATION_SOURCE,
    AuditAction,
    Change,
    Subscription,
)
from packyard.domain.models import Caller
from packyard.domain.paging import Page, PageRequest
from packyard.domain.rules import utcnow
from packyard.domain.webhooks import (
    Delivery,
    Webhook,
    check_description,
    check_hmac_key,
    check_name,
    check_url,
    parse_subscriptions,
)
from packyard.errors import ApiError, Code, already_exists, invalid, not_found, permission_denied
from packyard.ids import new_id
from packyard.services import journal
from packyard.services.secrets import Sealer, UnsealError, webhook_key_context
from packyard.services.webhook_deliveries import WebhookDeliveryService
from packyard.store.engine import Store
from packyard.store.journal import subscriptions_to_json
from packyard.store.webhooks import WebhookRepo, WebhookRow

VERIFY_ERROR = "Error verifying webhook configuration"

# update_mask paths (snake or lower camel case) → the fields they replace.
_MASK = {
    "description": ("description",),
    "config": ("url", "hmac_key"),
    "config.url": ("url",),
    "config.hmac_key": ("hmac_key",),
    "config.hmackey": ("hmac_key",),
    "subscriptions": ("subscriptions",),
    "enabled": ("enabled",),
}


@dataclass(frozen=True, slots=True)
class WebhookView:
    """A webhook, its last successful delivery (``last_delivery`` on the wire) and its newest
    delivery whatever its state (what the console shows)."""

    webhook: Webhook
    last_delivery: Delivery | None = None
    newest: Delivery | None = None


def parse_mask(raw: str | None) -> frozenset[str]:
    """The fields ``update_mask`` (comma-separated paths) names."""
    fields: set[str] = set()
    for part in (raw or "").split(","):
        path = part.strip()
        if not path:
            continue
        named = _MASK.get(path.lower())
        if named is None:
            raise invalid(
                f"Unknown update_mask path {path[:64]!r}: use description, config, config.url, "
                "config.hmac_key, subscriptions or enabled.",
                field="update_mask",
            )
        fields.update(named)
    if not fields:
        raise invalid(
            "update_mask is required: name the fields to change (e.g. 'config,enabled').",
            field="update_mask",
        )
    return frozenset(fields)


def verification_body(test_payload: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """HCP's verification event, or the caller's ``test_payload`` in its place."""
    if test_payload:
        return dict(test_payload)
    return {
        "event_id": journal.new_event_id("webhook"),
        "event_action": "test",
        "event_description": "Verification",
        "event_source": VERIFICATION_SOURCE,
        "resource_id": "",
        "resource_name": "",
        "event_version": EVENT_VERSION,
        "event_payload": {},
    }


def audit_block(hook: Webhook) -> dict[str, Any]:
    """A webhook in audit records: never its HMAC key, only whether it has one."""
    return {
        "id": hook.id,
        "name": hook.name,
        "resource_name": hook.resource_name,
        "url": hook.url,
        "description": hook.description,
        "enabled": hook.enabled,
        "hmac_key_set": hook.has_hmac_key,
        "subscriptions": subscriptions_to_json(hook.subscriptions),
    }


def _missing(project_id: str, name: str) -> ApiError:
    return not_found(f"Webhook {name!r} does not exist in project {project_id}.")


def _require_reader(caller: Caller) -> None:
    if caller.role not in (Role.CONTRIBUTOR, Role.ADMIN):
        raise permission_denied(
            f"Principal {caller.name!r} cannot see this project's webhooks: contributors and "
            "admins of the project can."
        )


def _require_admin(caller: Caller) -> None:
    if caller.role is not Role.ADMIN:
        raise permission_denied(
            f"Principal {caller.name!r} cannot change this project's webhooks: only the "
            "project's admins can."
        )


class WebhookService:
    def __init__(self, store: Store, sealer: Sealer, deliveries: WebhookDeliveryService) -> None:
        self.store = store
        self.sealer = sealer
        self.deliveries = deliveries

    # --- reads --------------------------------------------------------------------------

    def list(self, caller: Caller, page: PageRequest) -> Page[WebhookView]:
        """A page of the project's webhooks with their last deliveries (three statements)."""
        _require_reader(caller)
        with self.store.read() as conn:
            repo = WebhookRepo(conn)
            found = repo.list(caller.project_id, page)
            ids = [h.id for h in found.items]
            delivered, newest = repo.newest(ids, delivered=True), repo.newest(ids)
        views = [WebhookView(h, delivered.get(h.id), newest.get(h.id)) for h in found.items]
        return Page(views, found.next_token, found.previous_token, found.total)

    def get(self, caller: Caller, name: str) -> WebhookView:
        _require_reader(caller)
        with self.store.read() as conn:
            repo = WebhookRepo(conn)
            row = repo.get(caller.project_id, name)
            if row is None:
                raise _missing(caller.project_id, name)
            return WebhookView(row.webhook, repo.last_delivered(row.webhook.id))

    def deliveries_of(self, caller: Caller, name: str, page: PageRequest) -> Page[Delivery]:
        _require_reader(caller)
        with self.store.read() as conn:
            repo = WebhookRepo(conn)
            row = repo.get(caller.project_id, name)
            if row is None:
                raise _missing(caller.project_id, name)
            return repo.deliveries(row.webhook.id, page)

    # --- changes ------------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        name: str | None,
        *,
        url: str | None,
        hmac_key: str | None = None,
        description: str | None = None,
        enabled: bool | None = None,
        subscriptions: Any = None,
        test_payload: Mapping[str, Any] | None = None,
    ) -> Webhook:
        _require_admin(caller)
        return self._create(
            caller,
            check_name(name),
            url=check_url(url),
            hmac_key=check_hmac_key(hmac_key),
            description=check_description(description),
            enabled=enabled,
            subscriptions=parse_subscriptions(subscriptions),
            test_payload=test_payload,
        )

    def _create(
        self,
        caller: Caller,
        name: str,
        *,
        url: str,
        hmac_key: str,
        description: str,
        enabled: bool | None,
        subscriptions: tuple[Subscription, ...],
        test_payload: Mapping[str, Any] | None,
    ) -> Webhook:
        with self.store.read() as conn:
            if WebhookRepo(conn).get(caller.project_id, name) is not None:
                raise _taken(name)
        if enabled is not False:
            problem = self._verify(url, hmac_key, test_payload)
            if problem and enabled:
                raise _unverified(problem)
            enabled = not problem
        now = utcnow()
        hook = Webhook(
            id=new_id(),
            project_id=caller.project_id,
            name=name,
            description=description,
            url=url,
            has_hmac_key=bool(hmac_key),
            enabled=enabled,
            subscriptions=subscriptions,
            created_at=now,
            updated_at=now,
        )
        try:
            with self.store.write(affects_reads=False) as conn:
                WebhookRepo(conn).insert(hook, self._seal(hook.id, hmac_key))
                journal.record(
                    conn,
                    caller.project_id,
                    caller,
                    Change(AuditAction.CREATE, "Created webhook", {"webhook": audit_block(hook)}),
                )
        except IntegrityError:  # created by another request meanwhile
            raise _taken(name) from None
        return hook

    def update(
        self,
        caller: Caller,
        name: str,
        update_mask: str | None,
        webhook: Mapping[str, Any] | None,
        test_payload: Mapping[str, Any] | None = None,
    ) -> Webhook:
        """Replace the fields ``update_mask`` names with ``webhook``'s; a named field that
        ``webhook`` leaves out takes its zero value (false, "", none), as the Terraform
        provider relies on (it omits ``enabled: false`` and empty strings)."""
        _require_admin(caller)
        return self._update(caller, name, parse_mask(update_mask), webhook or {}, test_payload)

    def _update(
        self,
        caller: Caller,
        name: str,
        mask: frozenset[str],
        body: Mapping[str, Any],
        test_payload: Mapping[str, Any] | None,
    ) -> Webhook:
        config = body.get("config") or {}
        if not isinstance(config, dict):
            raise invalid("webhook.config must be an object.", field="webhook.config")
        enabled_value = body.get("enabled")
        if enabled_value is not None and not isinstance(enabled_value, bool):
            raise invalid("webhook.enabled must be true or false.", field="webhook.enabled")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise invalid("webhook.description must be a string.", field="webhook.description")
        row = self._row(caller.project_id, name)
        old = row.webhook
        new = old
        old_key = self._open_quietly(row)
        key = old_key
        if "description" in mask:
            new = replace(new, description=check_description(description))
        if "url" in mask:
            url = config.get("url")
            new = replace(
                new,
                url=check_url(url if isinstance(url, str) else None, "webhook.config.url"),
            )
        if "hmac_key" in mask:
            raw_key = config.get("hmac_key")
            key = check_hmac_key(raw_key if isinstance(raw_key, str) else None)
            new = replace(new, has_hmac_key=bool(key))
        if "subscriptions" in mask:
            new = replace(
                new,
                subscriptions=parse_subscriptions(
                    body.get("subscriptions"), "webhook.subscriptions"
                ),
            )
        if "enabled" in mask:
            new = replace(new, enabled=bool(enabled_value))
        key_changed = key != old_key
        if new.enabled and (not old.enabled or new.url != old.url or key_changed):
            problem = self._verify(new.url, key or "", test_payload)
            if problem:
                raise _unverified(problem)
        new = replace(new, updated_at=max(utcnow(), old.updated_at))
        sealed = self._seal(old.id, key or "") if key_changed else row.hmac_key_sealed
        self._store(
            caller,
            row,
            new,
            sealed,
            Change(
                AuditAction.UPDATE,
                "Updated webhook",
                {
                    "webhook": audit_block(new),
                    "update_mask": sorted(mask),
                    "before": audit_block(old),
                    "after": audit_block(new),
                },
            ),
        )
        if new.enabled and not old.enabled:
            self.deliveries.wake()  # its queue, kept while it was disabled, may go on
        return new

    def rename(self, caller: Caller, name: str, new_name: str | None) -> Webhook:
        _require_admin(caller)
        target = check_name(new_name)
        row = self._row(caller.project_id, name)
        if target == name:
            return row.webhook
        with self.store.read() as conn:
            if WebhookRepo(conn).get(caller.project_id, target) is not None:
                raise _taken(target)
        new = replace(row.webhook, name=target, updated_at=max(utcnow(), row.webhook.updated_at))
        record = {
            "webhook": audit_block(new),
            "before": audit_block(row.webhook),
            "after": audit_block(new),
        }
        self._store(
            caller,
            row,
            new,
            row.hmac_key_sealed,
            Change(AuditAction.UPDATE, "Renamed webhook", record),
        )
        return new

    def delete(self, caller: Caller, name: str) -> None:
        _require_admin(caller)
        with self.store.write(affects_reads=False) as conn:
            repo = WebhookRepo(conn)
            row = repo.get(caller.project_id, name)
            if row is None:
                raise _missing(caller.project_id, name)
            repo.delete(row.webhook.id)
            journal.record(
                conn,
                caller.project_id,
                caller,
                Change(
                    AuditAction.DELETE, "Deleted webhook", {"webhook": audit_block(row.webhook)}
                ),
            )

    def redeliver(self, caller: Caller, name: str, delivery_id: str) -> Delivery:
        """Send a finished (delivered or dead) delivery again: the same event, so the same
        ``event_id``, from its first attempt, in its place in the webhook's order."""
        _require_admin(caller)
        with self.store.write(affects_reads=False) as conn:
            repo = WebhookRepo(conn)
            row = repo.get(caller.project_id, name)
            if row is None:
                raise _missing(caller.project_id, name)
            found = repo.delivery(row.webhook.id, delivery_id)
            if found is None:
                raise not_found(f"Webhook {name!r} has no delivery {delivery_id!r}.")
            if not repo.requeue(row.webhook.id, delivery_id, utcnow()):
                raise ApiError(
                    Code.FAILED_PRECONDITION,
                    f"Delivery {delivery_id} is {found.state}: only a delivered or dead "
                    "delivery can be sent again.",
                )
            journal.record(
                conn,
                caller.project_id,
                caller,
                Change(
                    AuditAction.UPDATE,
                    "Redelivered webhook delivery",
                    {
                        "webhook": audit_block(row.webhook),
                        "delivery": {"id": delivery_id, "event_id": found.event_id},
                    },
                ),
            )
            again = repo.delivery(row.webhook.id, delivery_id)
        assert again is not None
        self.deliveries.wake()
        return again

    # --- helpers ------------------------------------------------------------------------

    def _row(self, project_id: str, name: str) -> WebhookRow:
        with self.store.read() as conn:
            row = WebhookRepo(conn).get(project_id, name)
        if row is None:
            raise _missing(project_id, name)
        return row

    def _store(
        self, caller: Caller, row: WebhookRow, new: Webhook, sealed: bytes | None, change: Change
    ) -> None:
        try:
            with self.store.write(affects_reads=False) as conn:
                repo = WebhookRepo(conn)
                if not repo.replace(new, sealed, expected_updated_at=row.webhook.updated_at):
                    if repo.by_id(row.webhook.id) is None:
                        raise _missing(caller.project_id, row.webhook.name)
                    raise ApiError(
                        Code.ABORTED,
                        f"Webhook {row.webhook.name!r} was changed by another request "
                        "meanwhile; try again.",
                    )
                journal.record(conn, caller.project_id, caller, change)
        except IntegrityError:  # renamed to a name taken meanwhile
            raise _taken(new.name) from None

    def _verify(self, url: str, key: str, test_payload: Mapping[str, Any] | None) -> str:
        """Why the verification POST failed, or ``""``."""
        body = orjson.dumps(verification_body(test_payload))
        attempt = self.deliveries.sender.post(url, body, key.encode() if key else None)
        return attempt.error

    def _seal(self, webhook_id: str, key: str) -> bytes | None:
        if not key:
            return None
        return self.sealer.seal(key.encode(), context=webhook_key_context(webhook_id))

    def _open_quietly(self, row: WebhookRow) -> str | None:
        """The stored key in clear (``None``: none, or sealed with another server key,
        which any new key replaces)."""
        try:
            key = self.deliveries.open_key(row.webhook.id, row.hmac_key_sealed)
        except UnsealError:
            return None
        return key.decode() if key is not None else ""


def _taken(name: str) -> ApiError:
    return already_exists(f"A webhook named {name!r} already exists in this project.")


def _unverified(problem: str) -> ApiError:
    return ApiError(Code.FAILED_PRECONDITION, f"{VERIFY_ERROR}: {problem}.")
