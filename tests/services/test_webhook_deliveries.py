"""The webhook delivery queue, driven directly against a real receiver over HTTP: signature,
envelope, strict order, retries, dead letters, redelivery, lease takeover, kill -9 and the
outbound guard."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import signal
import ssl
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.domain.events import AuditAction, Change, EventAction, VersionEvent
from packyard.domain.rules import utcnow
from packyard.domain.webhooks import Delivery
from packyard.errors import ApiError, Code
from packyard.metrics import metrics
from packyard.services import journal
from packyard.services.container import Services
from packyard.services.outbound import OutboundGuard, Refused, forbidden
from packyard.services.webhook_deliveries import Sender, WebhookSettings
from packyard.store.schema import events, webhook_deliveries
from packyard.store.webhooks import WebhookRepo
from packyard.tls import ensure_certificate
from tests.support.factories import TenantFixture, unique
from tests.support.receiver import Receiver, receiving

FAST = WebhookSettings(
    timeout_s=2,
    connect_timeout_s=1,
    max_attempts=3,
    backoff_base_s=0.01,
    backoff_max_s=0.02,
    lease_s=60,
    guard=OutboundGuard(allow_private=True),
)
GUARDED = replace(FAST, guard=OutboundGuard())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def svc(services: Services, tenant: TenantFixture) -> Services:
    services.webhook_deliveries.settings = FAST
    return services


def make_hook(
    svc: Services, tenant: TenantFixture, url: str, key: str | None = None, **kw: Any
) -> str:
    """An enabled webhook subscribed to every version event (verified against ``url``)."""
    name = unique("hook")
    svc.webhooks.create(
        tenant.caller(Role.ADMIN),
        name,
        url=url,
        hmac_key=key,
        description="test",
        enabled=True,
        subscriptions=[{"events": [{"source": "hashicorp.packer.version", "action": "*"}]}],
        **kw,
    )
    return name


def emit(svc: Services, tenant: TenantFixture, count: int = 1) -> list[str]:
    """Record ``count`` version events (as the instrumented services do); their ids."""
    ids: list[str] = []
    for i in range(count):
        with svc.store.write(tenant.project_id) as conn:
            journal.record(
                conn,
                tenant.project_id,
                tenant.caller(),
                Change(
                    AuditAction.CREATE,
                    "Created version",
                    bucket="golden",
                    events=(
                        VersionEvent(
                            EventAction.CREATE,
                            {
                                "bucket": {"id": "b-1", "name": "golden"},
                                "version": {"id": f"v-{i}", "name": f"v{i}", "status": "RUNNING"},
                            },
                        ),
                    ),
                ),
            )
        # Recorded at COMMIT (the journal numbers its rows last): read them after it.
        with svc.store.read() as conn:
            ids.append(
                conn.execute(
                    select(events.c.id).order_by(events.c.seq.desc()).limit(1)
                ).scalar_one()
            )
    return ids


def deliveries(svc: Services) -> list[Delivery]:
    """Every delivery, oldest event first."""
    with svc.store.read() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.webhook_id, webhook_deliveries.c.id).order_by(
                webhook_deliveries.c.seq
            )
        ).all()
        repo = WebhookRepo(conn)
        found = [repo.delivery(r.webhook_id, r.id) for r in rows]
    return [d for d in found if d is not None]


def drain(svc: Services, until: int, timeout: float = 20) -> None:
    """Run due deliveries until ``until`` of them are finished."""
    deadline = time.monotonic() + timeout
    while sum(d.state in ("delivered", "dead") for d in deliveries(svc)) < until:
        assert time.monotonic() < deadline, [d.state for d in deliveries(svc)]
        svc.webhook_deliveries.run_due()
        time.sleep(0.01)


def test_the_envelope_is_sent_signed_over_its_exact_bytes(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    make_hook(svc, tenant, receiver.url, key="s3cret-key")
    verification = receiver.wait_for(1)[0]
    assert verification.json()["event_source"] == "hashicorp.webhook.verification"
    assert verification.json()["event_action"] == "test"
    [event_id] = emit(svc, tenant)
    assert svc.webhook_deliveries.run_due() == 1
    sent = receiver.wait_for(2)[1]
    expected = hmac.new(b"s3cret-key", sent.body, hashlib.sha512).hexdigest()
    assert sent.headers["x-hcp-webhook-signature"] == expected
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["user-agent"].startswith("packyard/")
    body = sent.json()
    assert set(body) == {
        "resource_id",
        "resource_name",
        "event_id",
        "event_action",
        "event_description",
        "event_source",
        "event_version",
        "event_payload",
    }
    assert body["event_id"] == event_id and event_id.startswith("packer.event:")
    assert body["event_action"] == "create"
    assert body["event_description"] == "Created version"
    assert body["event_source"] == "hashicorp.packer.version"
    assert body["event_version"] == "1"
    assert (
        body["resource_name"]
        == f"packer/project/{tenant.project_id}/registry/{body['resource_id']}"
    )
    assert body["event_payload"]["bucket"] == {"id": "b-1", "name": "golden"}
    [done] = deliveries(svc)
    assert done.state == "delivered" and done.attempts == 1 and done.finished_at is not None
    assert done.response is not None and done.response["status_code"] == 200
    assert done.request is not None and done.request["headers"]["X-HCP-Webhook-Signature"]


def test_no_signature_without_a_key(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    make_hook(svc, tenant, receiver.url)
    emit(svc, tenant)
    svc.webhook_deliveries.run_due()
    assert all("x-hcp-webhook-signature" not in r.headers for r in receiver.wait_for(2))


def test_strict_order_retries_with_backoff_then_dead_then_the_next(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    make_hook(svc, tenant, receiver.url)
    receiver.wait_for(1)
    receiver.requests.clear()
    receiver.statuses = [500, 503, 500]  # every attempt of the first event fails
    first, second = emit(svc, tenant, 2)
    before = {o: _counted(o) for o in ("delivered", "retried", "dead")}
    # A failed attempt is retried later, not at once: the next pass finds nothing due.
    assert svc.webhook_deliveries.run_one() is True
    head = deliveries(svc)[0]
    assert (
        head.state == "queued"
        and head.attempts == 1
        and head.next_attempt_at > utcnow() - timedelta(seconds=1)
    )
    assert head.response is not None and head.response["status_code"] == 500
    drain(svc, 2)
    sent = [r.json()["event_id"] for r in receiver.requests]
    assert sent == [first, first, first, second]
    dead, delivered = deliveries(svc)
    assert (dead.state, dead.attempts, dead.event_id) == ("dead", 3, first)
    assert dead.last_error and dead.response is not None and dead.response["status_code"] == 500
    assert (delivered.state, delivered.attempts) == ("delivered", 1)
    counted = {o: _counted(o) - before[o] for o in before}
    assert counted == {"delivered": 1, "retried": 2, "dead": 1}


def _counted(outcome: str) -> float:
    value = metrics().registry.get_sample_value(
        "packyard_webhook_deliveries_total", {"outcome": outcome}
    )
    return value or 0.0


def test_each_webhook_has_its_own_order(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    with receiving() as other:
        make_hook(svc, tenant, receiver.url)
        make_hook(svc, tenant, other.url)
        receiver.statuses = [500] * 10
        emit(svc, tenant)
        svc.webhook_deliveries.run_due()
        # The failing webhook does not hold the other one back.
        assert len(other.wait_for(2)) == 2


def test_a_timeout_is_retried(svc: Services, tenant: TenantFixture, receiver: Receiver) -> None:
    make_hook(svc, tenant, receiver.url)
    svc.webhook_deliveries.settings = replace(FAST, timeout_s=0.5, connect_timeout_s=0.5)
    receiver.delay_s = 2
    emit(svc, tenant)
    svc.webhook_deliveries.run_one()
    [queued] = deliveries(svc)
    assert queued.state == "queued" and queued.attempts == 1 and queued.response is None
    assert "0.5 s" in queued.last_error
    receiver.delay_s = 0
    drain(svc, 1)
    assert deliveries(svc)[0].state == "delivered"


def test_redeliver_sends_the_same_event_again(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    name = make_hook(svc, tenant, receiver.url)
    [event_id] = emit(svc, tenant)
    drain(svc, 1)
    [done] = deliveries(svc)
    admin = tenant.caller(Role.ADMIN)
    again = svc.webhooks.redeliver(admin, name, done.id)
    assert (again.state, again.attempts, again.event_id) == ("queued", 0, event_id)
    with pytest.raises(ApiError) as refused:  # already queued
        svc.webhooks.redeliver(admin, name, done.id)
    assert refused.value.code is Code.FAILED_PRECONDITION
    drain(svc, 1)
    bodies = [r.json() for r in receiver.wait_for(3)[1:]]
    assert [b["event_id"] for b in bodies] == [event_id, event_id]
    assert bodies[0] == bodies[1]
    with pytest.raises(ApiError) as denied:
        svc.webhooks.redeliver(tenant.caller(Role.CONTRIBUTOR), name, done.id)
    assert denied.value.code is Code.PERMISSION_DENIED


def test_a_lapsed_claim_is_taken_over_and_the_old_claim_changes_nothing(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    make_hook(svc, tenant, receiver.url)
    emit(svc, tenant)
    now = utcnow()
    with svc.store.write(affects_reads=False) as conn:
        old = WebhookRepo(conn).claim(now, now + timedelta(seconds=60), "old-claim")
    assert old is not None and old.delivery.attempts == 1
    with svc.store.write(affects_reads=False) as conn:
        assert WebhookRepo(conn).claim(now + timedelta(seconds=30), now, "other") is None
    assert svc.webhook_deliveries.run_due(now + timedelta(seconds=30)) == 0
    # The claimer died; once its lease lapses another server sends the delivery.
    assert svc.webhook_deliveries.run_due(now + timedelta(seconds=61)) == 1
    [done] = deliveries(svc)
    assert (done.state, done.attempts) == ("delivered", 2)
    with svc.store.write(affects_reads=False) as conn:
        assert not WebhookRepo(conn).change(done.id, "old-claim", state="queued")
    assert deliveries(svc)[0].state == "delivered"
    assert len(receiver.wait_for(2)) == 2  # verification + one delivery


def test_a_disabled_webhook_keeps_its_queue(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    name = make_hook(svc, tenant, receiver.url)
    emit(svc, tenant)
    admin = tenant.caller(Role.ADMIN)
    svc.webhooks.update(admin, name, "enabled", {"enabled": False})
    assert svc.webhook_deliveries.run_due() == 0
    svc.webhooks.update(admin, name, "enabled", {"enabled": True})
    assert svc.webhook_deliveries.run_due() == 1
    assert deliveries(svc)[0].state == "delivered"


_WORKER = textwrap.dedent(
    """
    import sys
    from packyard.services.outbound import OutboundGuard
    from packyard.services.secrets import Sealer
    from packyard.services.webhook_deliveries import WebhookDeliveryService, WebhookSettings
    from packyard.store.engine import Store

    settings = WebhookSettings(timeout_s=60, lease_s=60, guard=OutboundGuard(allow_private=True))
    service = WebhookDeliveryService(Store(sys.argv[1]), Sealer.ephemeral(), settings)
    service.run_one()
    """
)


def test_a_server_killed_mid_delivery_loses_nothing(
    svc: Services, tenant: TenantFixture, receiver: Receiver, db_url: str
) -> None:
    make_hook(svc, tenant, receiver.url)
    [event_id] = emit(svc, tenant)
    receiver.delay_s = 30  # the first attempt hangs until its server is killed
    started = utcnow()
    child = subprocess.Popen([sys.executable, "-c", _WORKER, db_url])
    try:
        receiver.wait_for(2, timeout=30)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    [claimed] = deliveries(svc)
    assert claimed.state == "running" and claimed.attempts == 1
    receiver.delay_s = 0
    assert svc.webhook_deliveries.run_due() == 0  # its lease still holds
    assert claimed.next_attempt_at >= started + timedelta(seconds=60)  # the lease
    assert svc.webhook_deliveries.run_due(claimed.next_attempt_at + timedelta(seconds=1)) == 1
    [done] = deliveries(svc)
    assert (done.state, done.attempts) == ("delivered", 2)
    assert [r.json()["event_id"] for r in receiver.wait_for(3)[1:]] == [event_id, event_id]


# --- the outbound guard ----------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104
        "224.0.0.1",
        "::1",
        "fd00:ec2::254",
        "fe80::1",
        "::ffff:127.0.0.1",
        "64:ff9b::a01:203",
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses(address: str) -> None:
    assert forbidden(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/hook",
        "http://localhost:{port}/hook",  # a name resolving to loopback
        "http://[::1]:{port}/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/",
    ],
)
def test_the_guard_refuses_private_addresses_for_good(url: str, receiver: Receiver) -> None:
    attempt = Sender(GUARDED).post(url.format(port=receiver.port), b"{}", None)
    assert attempt.final and not attempt.ok and attempt.response is None
    assert "may not be called" in attempt.error
    assert receiver.requests == []


def test_a_refused_delivery_is_dead_at_once(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    make_hook(svc, tenant, receiver.url)
    svc.webhook_deliveries.settings = GUARDED
    emit(svc, tenant)
    assert svc.webhook_deliveries.run_due() == 1
    [dead] = deliveries(svc)
    assert (dead.state, dead.attempts) == ("dead", 1)
    assert "loopback" in dead.last_error
    assert len(receiver.requests) == 1  # the verification only


def test_verification_through_the_guard_refuses_the_change(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    svc.webhook_deliveries.settings = GUARDED
    with pytest.raises(ApiError) as refused:
        make_hook(svc, tenant, receiver.url)
    assert refused.value.code is Code.FAILED_PRECONDITION
    assert refused.value.message.startswith("Error verifying webhook configuration")
    assert receiver.requests == []
    assert svc.webhooks.list(tenant.caller(), _page()).items == []


def _page() -> Any:
    from packyard.domain.paging import PageRequest

    return PageRequest()


def test_the_connection_goes_to_the_checked_address_with_the_name_kept(
    receiver: Receiver,
) -> None:
    resolved: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["127.0.0.1"]

    guard = OutboundGuard(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),), resolve=resolve)
    url = f"http://hooks.example.test:{receiver.port}/hook?x=1"
    attempt = Sender(replace(GUARDED, guard=guard)).post(url, b"{}", None)
    assert attempt.ok, attempt.error
    [got] = receiver.requests
    assert got.headers["host"] == f"hooks.example.test:{receiver.port}"
    assert got.path == "/hook?x=1"
    assert resolved == ["hooks.example.test"]  # resolved once
    # Any address of a name being forbidden refuses it (one rebinding answer is enough).
    mixed = OutboundGuard(resolve=lambda h, p: ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(Refused):
        mixed.pin("https://hooks.example.test/")
    pinned = OutboundGuard(resolve=lambda h, p: ["2606:2800:220:1::1"]).pin(
        "https://hooks.example.test:8443/a?b=c"
    )
    assert pinned.url == "https://[2606:2800:220:1::1]:8443/a?b=c"
    assert (pinned.host, pinned.sni) == ("hooks.example.test:8443", "hooks.example.test")


def test_redirects_are_never_followed(receiver: Receiver) -> None:
    with receiving("127.0.0.2") as inside:
        receiver.status = 302
        receiver.location = inside.url
        guard = OutboundGuard(allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),))
        attempt = Sender(replace(GUARDED, guard=guard)).post(receiver.url, b"{}", None)
        assert not attempt.ok and not attempt.final
        assert attempt.response is not None and attempt.response["status_code"] == 302
        assert len(receiver.requests) == 1
        assert inside.requests == []


def test_https_checks_the_certificate_against_the_name_not_the_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The certificate names hooks.example.test and 127.0.0.1: connecting to the checked
    # address must still verify the name the URL gave.
    found = ensure_certificate(tmp_path / "tls", ["hooks.example.test"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(found.cert, found.key)
    monkeypatch.setenv("SSL_CERT_FILE", str(found.cert))
    guard = OutboundGuard(
        allowed_networks=(ipaddress.ip_network("127.0.0.1/32"),),
        resolve=lambda host, port: ["127.0.0.1"],
    )
    sender = Sender(replace(GUARDED, guard=guard))
    with receiving(tls=context) as secure:
        good = sender.post(f"https://hooks.example.test:{secure.port}/hook", b"{}", None)
        assert good.ok, good.error
        assert secure.requests[0].headers["host"] == f"hooks.example.test:{secure.port}"
        wrong = sender.post(f"https://other.example.test:{secure.port}/hook", b"{}", None)
        assert not wrong.ok and wrong.response is None
        assert len(secure.requests) == 1


def test_finished_deliveries_and_their_events_go_after_the_retention(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    make_hook(svc, tenant, receiver.url)
    emit(svc, tenant, 3)
    drain(svc, 3)
    assert svc.webhook_deliveries.purge() == 0  # all of them are recent
    later = utcnow() + timedelta(days=91)
    assert svc.webhook_deliveries.purge(later) == 3
    assert deliveries(svc) == []
    with svc.store.read() as conn:
        assert conn.execute(select(events.c.id)).all() == []


def test_the_list_carries_each_webhooks_last_deliveries(
    svc: Services, tenant: TenantFixture, receiver: Receiver
) -> None:
    from packyard.domain.paging import PageRequest

    first, quiet = make_hook(svc, tenant, receiver.url), make_hook(svc, tenant, receiver.url)
    svc.webhooks.update(tenant.caller(Role.ADMIN), quiet, "enabled", {"enabled": False})
    emit(svc, tenant, 2)
    drain(svc, 2)
    views = {v.webhook.name: v for v in svc.webhooks.list(tenant.caller(), PageRequest()).items}
    shown = views[first]
    assert shown.last_delivery is not None and shown.newest is not None
    assert shown.last_delivery.id == shown.newest.id and shown.newest.state == "delivered"
    assert (views[quiet].last_delivery, views[quiet].newest) == (None, None)
