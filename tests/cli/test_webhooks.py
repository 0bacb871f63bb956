"""``packyard webhooks`` against a real server and a real receiver, and the SDK under it."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from pathlib import Path

import pytest

from packyard.client import PackerClient
from packyard.services.container import Services
from packyard.services.webhook_deliveries import WebhookSettings
from tests.services.test_webhook_deliveries import drain, emit
from tests.support.cli import Cli
from tests.support.factories import TenantFixture
from tests.support.receiver import Receiver, receiving


@pytest.fixture
def receiver(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv("PACKYARD_WEBHOOK_ALLOW_PRIVATE", "1")
    services.webhook_deliveries.settings = WebhookSettings.from_env()
    with receiving() as r:
        yield r


def test_create_list_deliveries_redeliver_delete(
    cli: Cli, receiver: Receiver, services: Services, tenant: TenantFixture, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key\n")
    created = cli.json(
        "webhooks",
        "create",
        "ci-hook",
        "--url",
        receiver.url,
        "--hmac-key-file",
        str(key_file),
        "--description",
        "to CI",
    )
    assert (created["name"], created["enabled"], created["hmac_key_set"]) == ("ci-hook", True, True)
    assert created["subscriptions"] == [
        {"resource_id": "", "events": [{"source": "hashicorp.packer.version", "action": "*"}]}
    ]
    verification = receiver.wait_for(1)[0]
    expected = hmac.new(b"file-key", verification.body, hashlib.sha512).hexdigest()
    assert verification.headers["x-hcp-webhook-signature"] == expected

    cli.ok(
        "webhooks",
        "create",
        "quiet",
        "--url",
        "https://example.test/hook",
        "--disabled",
        "--event",
        "hashicorp.packer.version:revoke",
        "--event",
        "hashicorp.packer.version:restore",
        "--hmac-key-env",
        "HOOK_KEY",
        HOOK_KEY="env-key",
    )
    plain = cli.ok("webhooks", "list", "--format", "plain").stdout.splitlines()
    assert plain[0].split() == [
        "NAME",
        "ENABLED",
        "URL",
        "EVENTS",
        "SIGNED",
        "UPDATED",
        "DESCRIPTION",
    ]
    rows = {line.split()[0]: line.split() for line in plain[1:]}
    assert rows["ci-hook"][:5] == [
        "ci-hook",
        "yes",
        receiver.url,
        "hashicorp.packer.version:*",
        "yes",
    ]
    assert rows["quiet"][:5] == [
        "quiet",
        "no",
        "https://example.test/hook",
        "hashicorp.packer.version:revoke,hashicorp.packer.version:restore",
        "yes",
    ]

    [event_id] = emit(services, tenant)
    drain(services, 1)
    [delivery] = cli.json("webhooks", "deliveries", "ci-hook")
    assert (delivery["event_id"], delivery["state"], delivery["attempts"]) == (
        event_id,
        "delivered",
        1,
    )
    table = cli.ok("webhooks", "deliveries", "ci-hook", "--format", "plain").stdout.splitlines()
    assert table[0].split()[:6] == ["ID", "EVENT", "ACTION", "STATE", "ATTEMPTS", "HTTP"]
    assert table[1].split()[:6] == [delivery["id"], event_id, "create", "delivered", "1", "200"]

    again = cli.json("webhooks", "redeliver", "ci-hook", delivery["id"])
    assert (again["event_id"], again["state"]) == (event_id, "queued")
    drain(services, 1)
    assert [r.json()["event_id"] for r in receiver.requests[1:]] == [event_id, event_id]

    assert cli.json("webhooks", "delete", "quiet", "--yes") == {"deleted": "quiet"}
    assert [h["name"] for h in cli.json("webhooks", "list")] == ["ci-hook"]


def test_bad_input_is_one_line_and_changes_nothing(cli: Cli, receiver: Receiver) -> None:
    receiver.status = 500
    for args, code in [
        (("webhooks", "create", "x", "--url", receiver.url), 1),  # verification fails
        (("webhooks", "create", "bad/name", "--url", receiver.url, "--disabled"), 1),
        (("webhooks", "create", "x", "--url", "ftp://example.test", "--disabled"), 1),
        (("webhooks", "create", "x", "--url", receiver.url, "--event", "nocolon"), 2),
        (("webhooks", "create", "x", "--url", receiver.url, "--hmac-key-env", "NOPE"), 2),
        (
            ("webhooks", "create", "x", "--url", receiver.url, "--hmac-key-file", "/nonexistent"),
            2,
        ),
        (("webhooks", "deliveries", "missing"), 1),
        (("webhooks", "delete", "missing", "--yes"), 1),
        (("webhooks", "redeliver", "missing", "01ABC"), 1),
    ]:
        result = cli.fails(code, *args)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert cli.json("webhooks", "list") == []


def test_the_sdk(hcp: PackerClient, receiver: Receiver) -> None:
    hook = hcp.create_webhook("sdk", receiver.url, enabled=False, description="d")
    assert (hook.name, hook.enabled, hook.config.url) == ("sdk", False, receiver.url)
    assert hook.resource_name.endswith("/geo/us/webhook/sdk")
    updated = hcp.update_webhook("sdk", "enabled", {"enabled": True})
    assert updated.enabled
    assert hcp.get_webhook("sdk").enabled
    assert [h.name for h in hcp.list_webhooks(page_size=1)] == ["sdk"]
    assert list(hcp.list_deliveries("sdk")) == []
    hcp.delete_webhook("sdk")
    assert list(hcp.list_webhooks()) == []
