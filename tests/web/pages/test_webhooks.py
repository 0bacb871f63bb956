"""Webhooks in the console, in a real browser against a real ``packyard serve`` whose own
delivery worker sends to a real receiver on loopback (``PACKYARD_WEBHOOK_ALLOW_PRIVATE=1``,
so this module starts a server of its own): admins create, enable, disable, delete and
redeliver; contributors read; viewers are refused."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, Response

from packyard.domain.events import VERIFICATION_SOURCE
from tests.support.console import Seeded, admin_api
from tests.support.receiver import Received, Receiver, receiving
from tests.support.serve_process import ServeProcess, run_cli
from tests.web.conftest import check_page

KEY = "console-test-hmac-key-7c1f"
COLUMNS = ("Event", "Event ID", "State", "Attempts", "Next attempt", "Response", "Sent")


@pytest.fixture(scope="module")
def console(console_tools: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """This module's server (it may call loopback receivers), with a user of each role; the
    package's ``admin``/``contributor``/``viewer`` fixtures sign in to it."""
    data_dir = tmp_path_factory.mktemp("webhooks-console") / "data"
    env = {"PACKYARD_WEBHOOK_ALLOW_PRIVATE": "1"}
    with ServeProcess(data_dir, "--log-level", "warning", env=env) as server:
        password = re.search(r"^PACKYARD_CONSOLE_PASSWORD=(\S+)$", server.stdout, re.M)
        assert password, server.stdout
        users = {"admin": ("admin@localhost", password.group(1))}
        for role in ("viewer", "contributor"):
            made = run_cli(
                "user",
                "create",
                "--data-dir",
                str(data_dir),
                "--email",
                f"{role}@example.com",
                "--role",
                role,
                "--format",
                "json",
            )
            assert made.returncode == 0, made.stderr
            users[role] = (f"{role}@example.com", json.loads(made.stdout)["password"])
        api = admin_api(server.base_url, data_dir)
        tenant = api.tenant
        yield Seeded(
            server.base_url, data_dir, users, tenant.organization_id, tenant.project_id, api
        )
        api.close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


def _to(receiver: Receiver, name: str) -> str:
    """A URL of the receiver for one webhook (other tests' webhooks get other events)."""
    return f"{receiver.url}/{name}"


def _sent_to(receiver: Receiver, name: str) -> list[Received]:
    return [r for r in list(receiver.requests) if r.path == f"/hook/{name}"]


def _arrived(receiver: Receiver, name: str, count: int, timeout: float = 20) -> list[Received]:
    """The first ``count`` requests to ``name``'s URL, once they arrived."""
    deadline = time.monotonic() + timeout
    while True:
        found = _sent_to(receiver, name)
        if len(found) >= count:
            return found[:count]
        assert time.monotonic() < deadline, f"{len(found)} of {count} requests arrived"
        time.sleep(0.05)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _submit(page: Page, button: Locator) -> Response:
    """Submit a form; the answer to its POST (the page then shows where it led)."""
    with (
        page.expect_response(lambda r: r.request.method == "POST") as answer,
        page.expect_navigation(),
    ):
        button.click()
    return answer.value


def _open(page: Page, url: str) -> Response:
    response = page.goto(url)
    assert response is not None
    return response


def _csrf(page: Page) -> str:
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    return token


def _webhook_api(console: Seeded, method: str, path: str = "", **body: Any) -> dict[str, Any]:
    api = console.api
    base = f"/2023-05-31/webhook/project/{console.project_id}"
    answer = api.http.request(
        method, base + path, json=body or None, headers=api.headers(), timeout=30
    )
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def _hooks(console: Seeded) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in _webhook_api(console, "GET", "/webhooks")["webhooks"]}


def _version_event(console: Seeded) -> str:
    """Create a version (one ``create`` event); its bucket."""
    bucket = _unique("hooked")
    console.api.create_bucket(bucket)
    console.api.create_version(bucket, _unique("fp"))
    return bucket


def _cells(row: Locator) -> list[str]:
    return [t.strip() for t in row.locator(":scope > th, :scope > td").all_inner_texts()]


def _deliveries(page: Page) -> list[dict[str, str]]:
    """The delivery log as a list of {column: text}, newest first."""
    table = page.get_by_role("table", name="Deliveries")
    heads = [t.strip() for t in table.locator("thead th").all_inner_texts()]
    assert tuple(heads[: len(COLUMNS)]) == COLUMNS, heads
    rows = table.locator("tbody tr.delivery")
    return [dict(zip(heads, _cells(rows.nth(i)), strict=True)) for i in range(rows.count())]


def _until(page: Page, url: str, ready: Callable[[Page], bool], timeout: float = 30) -> None:
    """Reload ``url`` until ``ready`` (the worker delivers in the background)."""
    deadline = time.monotonic() + timeout
    while True:
        _open(page, url)
        if ready(page):
            return
        assert time.monotonic() < deadline, page.content()
        time.sleep(0.3)


def _webhook_row(page: Page, name: str) -> Locator:
    table = page.get_by_role("table", name="Webhooks")
    row = table.locator("tbody tr", has=page.get_by_role("rowheader", name=name, exact=True))
    assert row.count() == 1, name
    return row


def _fill_create_form(
    page: Page,
    name: str,
    url: str,
    *,
    key: str = "",
    events: tuple[str, ...] = ("all",),
    enabled: bool = True,
) -> None:
    form = page.locator("#webhook-form")
    form.get_by_role("textbox", name=re.compile(r"^Name\b")).fill(name)
    form.get_by_role("textbox", name=re.compile(r"^URL\b")).fill(url)
    form.get_by_label(re.compile(r"^HMAC key\b")).fill(key)
    form.get_by_role("textbox", name=re.compile(r"^Description\b")).fill(f"{name} for tests")
    for box in form.locator("input[name=events]").all():
        box.set_checked((box.get_attribute("value") or "") in events)
    form.get_by_role("checkbox", name=re.compile(r"^Enabled\b")).set_checked(enabled)


# --- admins -------------------------------------------------------------------------------


def test_an_admin_creates_a_webhook_and_follows_its_deliveries(
    admin: Page, console: Seeded, receiver: Receiver
) -> None:
    list_url = console.url("webhooks")
    assert _open(admin, list_url).status == 200
    nav = admin.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks")
    assert nav.get_attribute("aria-current") == "page"

    name = _unique("builds")
    url = _to(receiver, name)
    _fill_create_form(admin, name, url, key=KEY, events=("create", "complete"))
    answer = _submit(admin, admin.get_by_role("button", name="Create webhook"))
    assert answer.status == 303
    assert admin.url.startswith(console.url("webhooks", name))
    assert admin.get_by_role("status").is_visible()
    # the verification event was sent, signed, before the webhook was stored enabled
    verification = _arrived(receiver, name, 1)[0]
    assert verification.json()["event_source"] == VERIFICATION_SOURCE
    assert "x-hcp-webhook-signature" in verification.headers
    facts = dict(
        zip(
            admin.locator("dl.facts dt").all_inner_texts(),
            admin.locator("dl.facts dd").all_inner_texts(),
            strict=True,
        )
    )
    assert facts["URL"] == url
    assert facts["HMAC key set"] == "Yes"
    assert facts["Events"] == "create, complete"
    assert KEY not in admin.content()  # write-only
    assert admin.get_by_role("table", name="Deliveries").count() == 0

    _version_event(console)
    sent = _arrived(receiver, name, 2)[1]
    event = sent.json()
    assert (event["event_action"], event["event_source"]) == ("create", "hashicorp.packer.version")
    here = console.url("webhooks", name)
    _until(admin, here, lambda p: _deliveries(p)[0]["State"] == "Delivered")
    log = _deliveries(admin)
    assert len(log) == 1
    first = log[0]
    assert (first["Event"], first["Event ID"], first["Attempts"], first["Response"]) == (
        "create",
        event["event_id"],
        "1",
        "200",
    )
    assert first["Next attempt"] == "—"
    assert first["Sent"] != "—"

    # the exchange, expanded without JavaScript (details/summary)
    detail = admin.locator(".delivery-detail details").first
    detail.locator("summary").click()
    payload = json.loads(detail.locator("pre.payload").inner_text())
    assert payload == event
    request_headers = detail.locator("section[aria-label=Request] pre.headers").inner_text()
    headers = dict(line.split(": ", 1) for line in request_headers.strip().splitlines())
    assert headers["X-HCP-Webhook-Signature"] == sent.headers["x-hcp-webhook-signature"]
    assert headers["Content-Type"] == "application/json"
    assert json.loads(detail.locator("section[aria-label=Response] pre.body").inner_text()) == {
        "ok": True
    }
    check_page(admin, "webhook")

    # redelivery: the same event again, a new attempt
    deliveries_path = f"/geo/us/webhook/{name}/deliveries"
    first_sent = _webhook_api(console, "GET", deliveries_path)["deliveries"][0]["request"][
        "sent_at"
    ]
    redeliver = admin.get_by_role("button", name=re.compile(r"^Redeliver "))
    assert redeliver.count() == 1
    answer = _submit(admin, redeliver)
    assert answer.status == 303
    assert admin.get_by_role("status").is_visible()
    again = _arrived(receiver, name, 3)[2]
    assert again.json()["event_id"] == event["event_id"]
    assert again.body == sent.body
    _until(admin, here, lambda p: _deliveries(p)[0]["State"] == "Delivered")
    assert [(d["Event ID"], d["Attempts"], d["Response"]) for d in _deliveries(admin)] == [
        (event["event_id"], "1", "200")
    ]
    wire = _webhook_api(console, "GET", deliveries_path)["deliveries"]
    assert [(d["event_id"], d["state"], d["response"]["status_code"]) for d in wire] == [
        (event["event_id"], "delivered", 200)
    ]
    assert wire[0]["request"]["sent_at"] > first_sent

    # the list
    _open(admin, list_url)
    cells = dict(
        zip(
            [t.strip() for t in admin.locator("table.webhooks thead th").all_inner_texts()],
            _cells(_webhook_row(admin, name)),
            strict=True,
        )
    )
    assert cells["URL"] == url
    assert cells["Status"] == "Enabled"
    assert cells["Events"] == "create, complete"
    assert cells["Last delivery"].split()[:3] == ["Delivered", "HTTP", "200"]
    check_page(admin, "webhooks")


def test_a_bad_url_is_explained_next_to_it(admin: Page, console: Seeded) -> None:
    _open(admin, console.url("webhooks"))
    name = _unique("bad")
    _fill_create_form(admin, name, "ftp://example.com/hook", key=KEY)
    answer = _submit(admin, admin.get_by_role("button", name="Create webhook"))
    assert answer.status == 400
    url = admin.locator("#webhook-url")
    assert url.get_attribute("aria-invalid") == "true"
    assert url.get_attribute("aria-describedby") == "webhook-url-error"
    assert admin.locator("#webhook-url-error").inner_text().startswith("Invalid webhook URL")
    assert url.input_value() == "ftp://example.com/hook"  # kept, to correct
    assert admin.locator("#webhook-name").input_value() == name
    assert admin.locator("#webhook-key").input_value() == ""  # a key is never sent back
    assert KEY not in admin.content()

    # a URL that does not answer 2xx fails verification, explained at the URL
    with receiving() as failing:
        failing.status = 500
        _fill_create_form(admin, name, failing.url, key=KEY)
        answer = _submit(admin, admin.get_by_role("button", name="Create webhook"))
        assert len(failing.requests) == 1
    assert answer.status == 400
    message = admin.locator("#webhook-url-error").inner_text()
    assert message.startswith("Error verifying webhook configuration: ")
    assert "500" in message
    assert admin.locator("#webhook-url").get_attribute("aria-describedby") == "webhook-url-error"
    check_page(admin, "webhooks-error")

    # no event chosen: explained at the events
    _fill_create_form(admin, name, "https://example.com/hook", events=())
    answer = _submit(admin, admin.get_by_role("button", name="Create webhook"))
    assert answer.status == 400
    assert admin.locator("#webhook-events-error").is_visible()
    assert name not in _hooks(console)


def test_an_admin_enables_disables_and_deletes(
    admin: Page, console: Seeded, receiver: Receiver
) -> None:
    list_url = console.url("webhooks")
    _open(admin, list_url)
    name = _unique("later")
    _fill_create_form(admin, name, _to(receiver, name), enabled=False)
    assert _submit(admin, admin.get_by_role("button", name="Create webhook")).status == 303
    time.sleep(0.5)
    assert _sent_to(receiver, name) == []  # disabled: nothing verified, nothing sent
    assert admin.locator("dl.facts").get_by_text("HMAC key set").is_visible()
    assert _hooks(console)[name]["enabled"] is False

    _open(admin, list_url)
    row = _webhook_row(admin, name)
    assert row.get_by_text("Disabled", exact=True).is_visible()
    assert _submit(admin, row.get_by_role("button", name=f"Enable {name}")).status == 303
    assert _arrived(receiver, name, 1)[0].json()["event_source"] == VERIFICATION_SOURCE
    row = _webhook_row(admin, name)
    assert row.get_by_text("Enabled", exact=True).is_visible()
    assert _hooks(console)[name]["enabled"] is True

    # from its own page
    _open(admin, console.url("webhooks", name))
    assert _submit(admin, admin.get_by_role("button", name=f"Disable {name}")).status == 303
    assert admin.url.startswith(console.url("webhooks", name))
    assert _hooks(console)[name]["enabled"] is False

    # enabling against a receiver that fails: refused, explained at the button
    with receiving() as failing:
        failing.status = 503
        _webhook_api(
            console,
            "PATCH",
            f"/geo/us/webhook/{name}",
            update_mask="config.url",
            webhook={"config": {"url": failing.url}},
        )
        _open(admin, console.url("webhooks", name))
        answer = _submit(admin, admin.get_by_role("button", name=f"Enable {name}"))
    assert answer.status == 400
    button = admin.get_by_role("button", name=f"Enable {name}")
    error_id = button.get_attribute("aria-describedby")
    assert error_id == f"status-{name}-error"
    assert (
        admin.locator(f"[id='{error_id}']")
        .inner_text()
        .startswith("Error verifying webhook configuration: ")
    )
    assert _hooks(console)[name]["enabled"] is False

    # a wrong name typed: nothing deleted, explained at the field
    forged = admin.request.post(
        console.url("webhooks", name, "delete"),
        form={"csrf_token": _csrf(admin), "confirm": "not-it", "back": "list"},
        max_redirects=0,
    )
    assert forged.status == 400
    assert name in _hooks(console)

    _open(admin, list_url)
    row = _webhook_row(admin, name)
    row.locator("summary").click()
    row.get_by_label(re.compile(r"^Type .* to delete it$")).fill(name)
    assert _submit(admin, row.get_by_role("button", name=f"Delete {name} for good")).status == 303
    assert admin.get_by_role("status").is_visible()
    assert name not in _hooks(console)
    rows = admin.get_by_role("table", name="Webhooks").get_by_role("rowheader", name=name)
    assert rows.count() == 0


# --- contributors and viewers -------------------------------------------------------------


def _delivered_hook(console: Seeded, receiver: Receiver) -> str:
    """A webhook (made over the API) with one delivered event."""
    name = _unique("shared")
    _webhook_api(
        console,
        "POST",
        "/webhooks",
        name=name,
        config={"url": _to(receiver, name), "hmac_key": KEY},
        enabled=True,
        subscriptions=[{"events": [{"source": "hashicorp.packer.version", "action": "*"}]}],
    )
    _version_event(console)
    _arrived(receiver, name, 2)
    return name


def test_a_contributor_reads_webhooks_but_changes_nothing(
    contributor: Page, console: Seeded, receiver: Receiver
) -> None:
    name = _delivered_hook(console, receiver)
    nav = contributor.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Webhooks").count() == 1
    assert _open(contributor, console.url("webhooks")).status == 200
    assert _webhook_row(contributor, name).is_visible()
    assert contributor.locator("main form").count() == 0
    assert contributor.get_by_role("columnheader", name="Actions").count() == 0
    check_page(contributor, "webhooks-contributor")

    here = console.url("webhooks", name)
    _until(contributor, here, lambda p: _deliveries(p)[0]["State"] == "Delivered")
    assert contributor.locator("main form").count() == 0
    assert contributor.get_by_role("button", name=re.compile("Redeliver")).count() == 0
    delivery = contributor.locator("tr.delivery").first.get_attribute("id") or ""
    token = _csrf(contributor)
    forged = {
        "": {"name": _unique("forged"), "url": receiver.url, "events": "all", "enabled": "yes"},
        f"/{name}/disable": {},
        f"/{name}/delete": {"confirm": name},
        f"/{name}/deliveries/{delivery.removeprefix('delivery-')}/redeliver": {},
    }
    deliveries_path = f"/geo/us/webhook/{name}/deliveries"
    log = _webhook_api(console, "GET", deliveries_path)["deliveries"]
    for path, values in forged.items():
        answer = contributor.request.post(
            console.url("webhooks") + path,
            form={"csrf_token": token, **values},
            max_redirects=0,
        )
        assert answer.status == 403, (path, answer.status)
    hooks = _hooks(console)
    assert hooks[name]["enabled"] is True
    assert not any(n.startswith("forged-") for n in hooks)
    time.sleep(0.5)
    assert _webhook_api(console, "GET", deliveries_path)["deliveries"] == log  # not redelivered
    assert len(_sent_to(receiver, name)) == 2


def test_a_viewer_has_no_webhooks(viewer: Page, console: Seeded, receiver: Receiver) -> None:
    name = _delivered_hook(console, receiver)
    assert viewer.get_by_role("link", name="Webhooks").count() == 0
    for url in (console.url("webhooks"), console.url("webhooks", name)):
        response = _open(viewer, url)
        assert response.status == 403
        assert viewer.get_by_role("heading", name="Not allowed").is_visible()
        assert viewer.get_by_role("table").count() == 0
        assert _to(receiver, name) not in viewer.content()
