"""Webhook deliveries: a durable queue in the database, a worker in each server.

:func:`packyard.services.journal.record` queues one delivery per (subscribed, enabled
webhook, event) in the transaction of the change. A worker thread in every server process
claims due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, serial write transactions on
SQLite) and POSTs each event's stored envelope to its webhook's URL.

- Order: a webhook's deliveries go strictly in event order: the next one is not sent while
  an earlier one of the same webhook is queued or running (retries included). A webhook that
  is disabled keeps its queue until it is enabled again.
- At least once: a claimed delivery carries a lease (``next_attempt_at``) and a random claim;
  if its server dies, another server takes it over when the lease lapses, and every later
  write names the claim, so the server whose claim was taken over changes nothing. The
  receiver may therefore see an event twice: the ``event_id`` is the same each time.
- Retries: any answer other than 2xx, a timeout or a network error is retried with
  exponential backoff and jitter, up to ``PACKYARD_WEBHOOK_MAX_ATTEMPTS`` attempts; then the
  delivery is ``dead`` and the webhook's next delivery proceeds. A URL the outbound guard
  refuses (:mod:`packyard.services.outbound`) is dead at once.
- Signature: with an HMAC key, ``X-HCP-Webhook-Signature`` is the lowercase hex
  HMAC-SHA512 of the exact bytes sent. The key is sealed at rest and opened in memory only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import random
import secrets
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson

from packyard import __version__, metrics
from packyard.config import env_number
from packyard.domain.rules import utcnow
from packyard.domain.webhooks import DEAD, DELIVERED, QUEUED
from packyard.services.background import LoopThread, QueueWorker, running
from packyard.services.outbound import IPNetwork, OutboundGuard, Refused, Unresolved
from packyard.services.secrets import Sealer, UnsealError, webhook_key_context
from packyard.store.engine import Store
from packyard.store.webhooks import Claimed, WebhookRepo

log = logging.getLogger(__name__)

TIMEOUT_ENV = "PACKYARD_WEBHOOK_TIMEOUT_S"
MAX_ATTEMPTS_ENV = "PACKYARD_WEBHOOK_MAX_ATTEMPTS"
ALLOW_PRIVATE_ENV = "PACKYARD_WEBHOOK_ALLOW_PRIVATE"
ALLOWED_NETWORKS_ENV = "PACKYARD_WEBHOOK_ALLOWED_NETWORKS"
RETENTION_ENV = "PACKYARD_WEBHOOK_RETENTION_DAYS"
PURGE_BATCH = 1000
SIGNATURE_HEADER = "X-HCP-Webhook-Signature"
USER_AGENT = f"packyard/{__version__}"
BODY_EXCERPT = 4096
MAX_HEADERS_KEPT = 50
# An idle worker looks for due deliveries this often (one read per pass per process);
# changes made by this process's own webhook calls wake it at once.
POLL_INTERVAL_S = 2.0


def signature(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha512).hexdigest()


def _networks(raw: str) -> tuple[IPNetwork, ...]:
    found: list[IPNetwork] = []
    for item in raw.split(","):
        if item.strip():
            try:
                found.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                log.warning("%s: %r is not a network; ignored", ALLOWED_NETWORKS_ENV, item.strip())
    return tuple(found)


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    timeout_s: float = 10.0  # the whole attempt
    connect_timeout_s: float = 5.0
    max_attempts: int = 8
    backoff_base_s: float = 10.0
    backoff_max_s: float = 3600.0
    # A claim outlives one attempt (at most ``timeout_s``) with a margin, and no more: after a
    # server dies, its hook's queue (strictly ordered) waits for the lease to lapse.
    lease_s: float = 30.0
    poll_interval_s: float = POLL_INTERVAL_S
    retention_days: float = 90.0  # HCP keeps a webhook's deliveries 90 days
    guard: OutboundGuard = field(default_factory=OutboundGuard)

    @classmethod
    def from_env(cls) -> WebhookSettings:
        timeout = env_number(TIMEOUT_ENV, 10, minimum=1)
        return cls(
            timeout_s=timeout,
            connect_timeout_s=min(5.0, timeout),
            max_attempts=int(env_number(MAX_ATTEMPTS_ENV, 8, minimum=1)),
            lease_s=2 * timeout + 10,
            retention_days=env_number(RETENTION_ENV, 90, minimum=0),
            guard=OutboundGuard(
                allow_private=os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
                in ("1", "true", "yes", "on"),
                allowed_networks=_networks(os.environ.get(ALLOWED_NETWORKS_ENV, "")),
            ),
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one POST sent and got: ``error`` is empty on a 2xx answer; ``final`` when
    retrying cannot help (the guard refused the URL)."""

    request: dict[str, Any]
    response: dict[str, Any] | None
    error: str
    final: bool = False

    @property
    def ok(self) -> bool:
        return not self.error


class Sender:
    """POSTs JSON bodies to webhook URLs through the outbound guard."""

    def __init__(
        self, settings: WebhookSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        self._transport = transport
        # Certificates: the CAs of SSL_CERT_FILE / SSL_CERT_DIR when set (a receiver with a
        # private CA), else certifi's; no other environment (proxies) is trusted.
        self._tls = httpx.create_ssl_context(trust_env=True)

    def post(self, url: str, body: bytes, key: bytes | None) -> Attempt:
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        if key:
            headers[SIGNATURE_HEADER] = signature(key, body)
        request: dict[str, Any] = {
            "url": _without_userinfo(url),
            "headers": dict(headers),
            "sent_at": utcnow().isoformat().replace("+00:00", "Z"),
        }
        try:
            pinned = self.settings.guard.pin(url)
        except Refused as exc:
            return Attempt(request, None, f"the URL may not be called: {exc}", final=True)
        except Unresolved as exc:
            return Attempt(request, None, str(exc))
        s = self.settings
        timeout = httpx.Timeout(s.timeout_s, connect=s.connect_timeout_s)
        started = time.monotonic()
        try:
            with (
                httpx.Client(
                    timeout=timeout,
                    follow_redirects=False,
                    trust_env=False,  # no proxy may carry the request past the guard
                    verify=self._tls,
                    transport=self._transport,
                ) as client,
                client.stream(
                    "POST",
                    pinned.url,
                    content=body,
                    headers={**headers, "Host": pinned.host},
                    extensions={"sni_hostname": pinned.sni} if pinned.sni else None,
                ) as response,
            ):
                excerpt = bytearray()
                for chunk in response.iter_raw():
                    excerpt += chunk
                    if len(excerpt) >= BODY_EXCERPT or time.monotonic() - started > s.timeout_s:
                        break
        except httpx.TimeoutException:
            return Attempt(request, None, f"no answer within {s.timeout_s:g} s")
        except httpx.HTTPError as exc:
            return Attempt(
                request, None, f"the receiver could not be reached ({type(exc).__name__})"
            )
        answer = {
            "status_code": response.status_code,
            "headers": dict(list(response.headers.items())[:MAX_HEADERS_KEPT]),
            "body": bytes(excerpt[:BODY_EXCERPT]).decode("utf-8", "replace"),
        }
        if 200 <= response.status_code < 300:
            return Attempt(request, answer, "")
        return Attempt(request, answer, f"the receiver answered HTTP {response.status_code}")


def _without_userinfo(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class WebhookDeliveryService:
    def __init__(
        self,
        store: Store,
        sealer: Sealer,
        settings: WebhookSettings | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.sealer = sealer
        self._settings = settings or WebhookSettings.from_env()
        self._transport = transport
        self.sender = Sender(self._settings, transport)
        self._wake = threading.Event()

    @property
    def settings(self) -> WebhookSettings:
        return self._settings

    @settings.setter
    def settings(self, value: WebhookSettings) -> None:
        self._settings = value
        self.sender = Sender(value, self._transport)

    def open_key(self, webhook_id: str, sealed: bytes | None) -> bytes | None:
        if sealed is None:
            return None
        return self.sealer.open(
            sealed, context=webhook_key_context(webhook_id), what="webhook's HMAC key"
        )

    # --- working ------------------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> int:
        """Send every delivery due at ``now`` (in order); how many attempts were made."""
        done = 0
        while self.run_one(now):
            done += 1
        return done

    def run_one(self, now: datetime | None = None) -> bool:
        at = now or utcnow()
        with self.store.read() as conn:  # idle servers poll with a read, not a write turn
            if not WebhookRepo(conn).has_due(at):
                return False
        claim = secrets.token_hex(16)
        with self.store.write(affects_reads=False) as conn:
            claimed = WebhookRepo(conn).claim(
                at, at + timedelta(seconds=self.settings.lease_s), claim
            )
        if claimed is None:
            return False
        try:
            self._send(claimed, at)
        except Exception as exc:  # a bug must not stop the worker nor lose the delivery
            log.exception("webhook delivery %s failed unexpectedly", claimed.delivery.id)
            self._failed(claimed, at, None, f"internal error ({type(exc).__name__})")
        return True

    def _send(self, claimed: Claimed, now: datetime) -> None:
        hook = claimed.webhook
        try:
            key = self.open_key(hook.webhook.id, hook.hmac_key_sealed)
        except UnsealError as exc:
            self._failed(claimed, now, None, exc.message)
            return
        attempt = self.sender.post(hook.webhook.url, orjson.dumps(claimed.body), key)
        if attempt.ok:
            self._finish(claimed, DELIVERED, now, attempt)
            metrics.metrics().webhook_delivery("delivered")
        elif attempt.final:
            log.warning(
                "webhook %s: delivery %s refused: %s",
                hook.webhook.name,
                claimed.delivery.id,
                attempt.error,
            )
            self._finish(claimed, DEAD, now, attempt)
            metrics.metrics().webhook_delivery("dead")
        else:
            self._failed(claimed, now, attempt, attempt.error)

    def _failed(self, claimed: Claimed, now: datetime, attempt: Attempt | None, error: str) -> None:
        delivery = claimed.delivery
        if delivery.attempts >= self.settings.max_attempts:
            log.warning(
                "webhook delivery %s: attempt %d failed (%s); giving up",
                delivery.id,
                delivery.attempts,
                error,
            )
            self._finish(claimed, DEAD, now, attempt, error)
            metrics.metrics().webhook_delivery("dead")
            return
        delay = min(
            self.settings.backoff_max_s,
            self.settings.backoff_base_s * 2 ** (delivery.attempts - 1),
        )
        delay *= random.uniform(0.5, 1.0)  # jitter, not a secret
        due = max(now, utcnow()) + timedelta(seconds=delay)
        values: dict[str, Any] = {
            "state": QUEUED,
            "next_attempt_at": due,
            "last_error": error[:1000],
        }
        if attempt is not None:
            values.update(request=attempt.request, response=attempt.response)
        with self.store.write(affects_reads=False) as conn:
            WebhookRepo(conn).change(delivery.id, claimed.claim, **values)
        metrics.metrics().webhook_delivery("retried")
        log.info(
            "webhook delivery %s: attempt %d failed (%s); next in %.1f s",
            delivery.id,
            delivery.attempts,
            error,
            delay,
        )

    def _finish(
        self,
        claimed: Claimed,
        state: str,
        now: datetime,
        attempt: Attempt | None,
        error: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "state": state,
            "finished_at": max(now, utcnow()),
            "last_error": (error if error is not None else attempt.error if attempt else "")[:1000],
        }
        if attempt is not None:
            values.update(request=attempt.request, response=attempt.response)
        with self.store.write(affects_reads=False) as conn:
            WebhookRepo(conn).change(claimed.delivery.id, claimed.claim, **values)

    def purge(self, now: datetime | None = None) -> int:
        """Delete the deliveries finished longer ago than the retention, and the events no
        delivery waits for any more, in batches; how many deliveries went (0 days: keep)."""
        if self.settings.retention_days <= 0:
            return 0
        cutoff = (now or utcnow()) - timedelta(days=self.settings.retention_days)
        total = 0
        while True:
            with self.store.write(affects_reads=False) as conn:
                deleted = WebhookRepo(conn).purge(cutoff, PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                return total

    def report_backlog(self) -> None:
        metrics.metrics().webhook_backlog(*self.backlog())

    def housekeeping(self) -> None:
        self.purge()

    def backlog(self) -> tuple[int, float]:
        """(unfinished deliveries, age in seconds of the oldest one)."""
        with self.store.read() as conn:
            count, oldest = WebhookRepo(conn).backlog()
        return count, (utcnow() - oldest).total_seconds() if oldest is not None else 0.0

    def wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def wake(self) -> None:
        self._wake.set()


THREAD_NAME = "packyard-webhook-worker"


class WebhookWorker(QueueWorker):
    """Sends due deliveries until stopped."""

    def __init__(self, deliveries: WebhookDeliveryService) -> None:
        super().__init__(THREAD_NAME, deliveries, interval=deliveries.settings.poll_interval_s)
        self.deliveries = deliveries


def worker_running(deliveries: WebhookDeliveryService) -> AbstractContextManager[LoopThread]:
    """Send ``deliveries`` in a background thread for the duration of the block."""
    return running(WebhookWorker(deliveries))


__all__ = [
    "SIGNATURE_HEADER",
    "Attempt",
    "Sender",
    "WebhookDeliveryService",
    "WebhookSettings",
    "WebhookWorker",
    "signature",
    "worker_running",
]
