"""HCP's webhook API as terraform-provider-hcp's ``hcp_notifications_webhook`` calls it
(v0.114.0, through the Go SDK): the acceptance test's steps replayed over real HTTP, with the
resource names percent-encoded as go-openapi sends them."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from packyard.domain.enums import Role
from packyard.services.container import Services
from packyard.services.webhook_deliveries import WebhookSettings
from packyard.store.schema import audit_events
from tests.services.test_webhook_deliveries import deliveries, drain, emit
from tests.support.factories import Api, TenantFixture
from tests.support.receiver import Receiver, receiving

ZERO = "0001-01-01T00:00:00.000Z"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture
def hcp(api: Api, services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hcp]:
    monkeypatch.setenv("PACKYARD_WEBHOOK_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("PACKYARD_WEBHOOK_TIMEOUT_S", "2")
    services.webhook_deliveries.settings = WebhookSettings.from_env()
    assert services.webhook_deliveries.settings.guard.allow_private
    client = Hcp(api)
    yield client


class Hcp:
    """The Go SDK's requests: resource names as one percent-encoded path parameter."""

    def __init__(self, api: Api, role: Role = Role.ADMIN) -> None:
        self.api = api
        self.role = role
        self.project_id = api.tenant.project_id
        self.token = api.tenant.identities[role].token

    def as_role(self, role: Role) -> Hcp:
        return Hcp(self.api, role)

    def call(self, method: str, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.api.http.request(method, path, json=json, headers=headers, **kw)

    def resource_name(self, name: str) -> str:
        return f"webhook/project/{self.project_id}/geo/us/webhook/{name}"

    def path(self, resource_name: str) -> str:
        return "/2023-05-31/" + quote(resource_name, safe="")

    def create(self, body: dict[str, Any]) -> httpx.Response:
        parent = quote(f"project/{self.project_id}", safe="")
        return self.call("POST", f"/2023-05-31/webhook/{parent}/webhooks", body)

    def get(self, resource_name: str) -> httpx.Response:
        return self.call("GET", self.path(resource_name))

    def update(self, resource_name: str, mask: str, webhook: dict[str, Any]) -> httpx.Response:
        # What the provider sends: zero times, and empty/false fields omitted.
        body = {"update_mask": mask, "webhook": {**webhook, "created_at": ZERO, "updated_at": ZERO}}
        return self.call("PATCH", self.path(resource_name), body)

    def rename(self, resource_name: str, name: str) -> httpx.Response:
        return self.call("PATCH", self.path(resource_name) + "/name", {"name": name})

    def delete(self, resource_name: str) -> httpx.Response:
        return self.call("DELETE", self.path(resource_name))


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def error(response: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code and isinstance(body["message"], str)
    return body


def test_the_provider_acceptance_sequence(hcp: Hcp, receiver: Receiver, services: Services) -> None:
    receiver.status = 500  # "unreachable": any verification would fail
    # Step 1: created disabled, so nothing is verified.
    created = ok(
        hcp.create(
            {
                "config": {"url": receiver.url},
                "description": "first",
                "enabled": False,
                "name": "webhook-1",
                "subscriptions": None,
            }
        )
    )["webhook"]
    assert receiver.requests == []
    resource_name = hcp.resource_name("webhook-1")
    assert created["resource_name"] == resource_name
    assert resource_name.split("/")[2] == hcp.project_id and len(resource_name.split("/")) == 7
    assert created["enabled"] is False and created["subscriptions"] == []
    assert created["config"] == {"url": receiver.url}
    resource_id = created["resource_id"]

    # Step 2: import = Read by resource name.
    read = ok(hcp.get(resource_name))["webhook"]
    assert (read["resource_id"], read["description"]) == (resource_id, "first")
    assert "hmac_key" not in read["config"]

    # Step 3: description and a subscription with an arbitrary resource id and action.
    subscription = {
        "resource_id": "some_resource_id",
        "events": [{"action": "update", "source": "hashicorp.packer.version"}],
    }
    long_description = "d" * 200
    ok(
        hcp.update(
            resource_name,
            "description,subscriptions",
            {
                "description": long_description,
                "subscriptions": [subscription],
                "config": {"url": receiver.url},
            },
        )
    )
    read = ok(hcp.get(resource_name))["webhook"]
    assert read["description"] == long_description
    assert read["subscriptions"] == [subscription]
    assert read["enabled"] is False

    # Steps 4-5: set, then rotate, the key of a disabled hook with a bad URL: no verification.
    for key in ("key-1", "key-2"):
        ok(
            hcp.update(
                resource_name,
                "config",
                {"config": {"url": receiver.url, "hmac_key": key}, "description": long_description},
            )
        )
    assert receiver.requests == []
    read = ok(hcp.get(resource_name))["webhook"]
    assert read["hmac_key_set"] is True and "hmac_key" not in read["config"]

    # Subscriptions are applied only when the mask names them.
    ok(hcp.update(resource_name, "description", {"description": "second", "subscriptions": []}))
    assert ok(hcp.get(resource_name))["webhook"]["subscriptions"] == [subscription]
    ok(
        hcp.update(
            resource_name,
            "description,subscriptions",
            {"description": "second", "subscriptions": []},
        )
    )
    assert ok(hcp.get(resource_name))["webhook"]["subscriptions"] == []

    # Step 6: rename, then enable with the bad URL: the rename holds, the update fails.
    renamed = ok(hcp.rename(resource_name, "webhook-2"))["webhook"]
    new_name = hcp.resource_name("webhook-2")
    assert renamed["resource_name"] == new_name and renamed["resource_id"] == resource_id
    error(hcp.get(resource_name), 404, 5)
    refused = error(
        hcp.update(new_name, "enabled", {"enabled": True, "description": "second"}), 400, 9
    )
    assert "Error verifying webhook configuration" in refused["message"]
    assert ok(hcp.get(new_name))["webhook"]["enabled"] is False
    # Step 7: the same once more.
    error(
        hcp.update(new_name, "config,enabled", {"enabled": True, "config": {"url": receiver.url}}),
        400,
        9,
    )
    assert len(receiver.requests) == 2

    # A working receiver: enabling verifies (signed with the stored key) and sticks.
    receiver.status = 204
    enabled = ok(hcp.update(new_name, "enabled", {"enabled": True, "description": "second"}))
    assert enabled["webhook"]["enabled"] is True
    verification = receiver.requests[-1]
    assert verification.json()["event_source"] == "hashicorp.webhook.verification"
    expected = hmac.new(b"key-2", verification.body, hashlib.sha512).hexdigest()
    assert verification.headers["x-hcp-webhook-signature"] == expected

    # "config" in the mask replaces url and key: an omitted key clears it.
    ok(hcp.update(new_name, "config", {"config": {"url": receiver.url}, "enabled": True}))
    read = ok(hcp.get(new_name))["webhook"]
    assert read["hmac_key_set"] is False
    assert "x-hcp-webhook-signature" not in receiver.requests[-1].headers
    # With "enabled" in the mask, an omitted enabled (false in Go) disables.
    ok(hcp.update(new_name, "enabled", {"description": "ignored"}))
    read = ok(hcp.get(new_name))["webhook"]
    assert read["enabled"] is False and read["description"] == "second"

    # Delete; a second delete is a 404, which the provider takes as success.
    assert ok(hcp.delete(new_name)) == {}
    error(hcp.get(new_name), 404, 5)
    error(hcp.delete(new_name), 404, 5)

    with services.store.read() as conn:
        described = conn.execute(
            select(audit_events.c.description, audit_events.c.status).where(
                audit_events.c.scope == hcp.project_id,
                audit_events.c.description.like("%webhook%"),
            )
        ).all()
    assert ("Created webhook", "OK") in described
    assert ("Renamed webhook", "OK") in described
    assert ("Deleted webhook", "OK") in described
    assert ("Updated webhook", "FAILED") in described


def test_create_verifies_unless_disabled(hcp: Hcp, receiver: Receiver) -> None:
    receiver.status = 500
    refused = error(
        hcp.create({"name": "strict", "config": {"url": receiver.url}, "enabled": True}), 400, 9
    )
    assert "Error verifying webhook configuration" in refused["message"]
    error(hcp.get(hcp.resource_name("strict")), 404, 5)
    # Without "enabled": verified, and created disabled since verification failed.
    lenient = ok(hcp.create({"name": "lenient", "config": {"url": receiver.url}}))["webhook"]
    assert lenient["enabled"] is False
    receiver.status = 200
    good = ok(hcp.create({"name": "good", "config": {"url": receiver.url}}))["webhook"]
    assert good["enabled"] is True
    assert len(receiver.requests) == 3
    error(hcp.create({"name": "good", "config": {"url": receiver.url}, "enabled": False}), 409, 6)
    listed = ok(hcp.call("GET", f"/2023-05-31/webhook/project/{hcp.project_id}/webhooks"))
    assert [w["name"] for w in listed["webhooks"]] == ["good", "lenient"]
    page = ok(
        hcp.call(
            "GET",
            f"/2023-05-31/webhook/project%2F{hcp.project_id}/webhooks",
            params={"pagination.page_size": "1"},
        )
    )
    assert [w["name"] for w in page["webhooks"]] == ["good"]
    assert page["pagination"]["next_page_token"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "-bad", "config": {"url": "https://example.test/"}}, "name"),
        ({"name": "a/b", "config": {"url": "https://example.test/"}}, "name"),
        ({"name": "ok", "config": {"url": "ftp://example.test/"}}, "config.url"),
        ({"name": "ok", "config": {}}, "config.url"),
        (
            {
                "name": "ok",
                "config": {"url": "https://example.test/"},
                "subscriptions": [{"events": [{"source": "packer.version", "action": "*"}]}],
            },
            "subscriptions[0].events[0].source",
        ),
    ],
)
def test_bad_input_is_refused(hcp: Hcp, body: dict[str, Any], field: str) -> None:
    refused = error(hcp.create({**body, "enabled": False}), 400, 3)
    assert refused["details"][0]["field_violations"][0]["field"] == field


def test_bad_update_masks(hcp: Hcp, receiver: Receiver) -> None:
    ok(hcp.create({"name": "m", "config": {"url": receiver.url}, "enabled": False}))
    name = hcp.resource_name("m")
    error(hcp.update(name, "", {}), 400, 3)
    error(hcp.update(name, "colour", {}), 400, 3)
    ok(hcp.update(name, "config.url", {"config": {"url": receiver.url + "2"}}))
    ok(hcp.update(name, "config.hmacKey", {"config": {"hmac_key": "k"}}))
    read = ok(hcp.get(name))["webhook"]
    assert (read["config"]["url"], read["hmac_key_set"]) == (receiver.url + "2", True)
    error(hcp.update(hcp.resource_name("missing"), "enabled", {}), 404, 5)
    # Literal slashes route as well as encoded ones.
    assert ok(hcp.call("GET", "/2023-05-31/" + name))["webhook"]["name"] == "m"
    error(hcp.call("GET", f"/2023-05-31/webhook/project/{hcp.project_id}/geo/eu/webhook/m"), 404, 5)


def test_roles(hcp: Hcp, receiver: Receiver) -> None:
    ok(hcp.create({"name": "r", "config": {"url": receiver.url}, "enabled": False}))
    listing = f"/2023-05-31/webhook/project/{hcp.project_id}/webhooks"
    contributor = hcp.as_role(Role.CONTRIBUTOR)
    assert len(ok(contributor.call("GET", listing))["webhooks"]) == 1
    error(
        contributor.create({"name": "c", "config": {"url": receiver.url}, "enabled": False}), 403, 7
    )
    error(contributor.delete(hcp.resource_name("r")), 403, 7)
    viewer = hcp.as_role(Role.VIEWER)
    error(viewer.call("GET", listing), 403, 7)
    anonymous = hcp.api.http.get(listing)
    assert anonymous.status_code == 401


def test_the_path_guard_still_refuses_encoded_slashes_elsewhere(api: Api) -> None:
    t = api.tenant
    response = api.http.get(
        f"/packer/2023-01-01/organizations/{t.organization_id}/projects/{t.project_id}%2Fx/registry",
        headers=api.headers(),
    )
    assert response.status_code == 400
    dots = api.http.get("/2023-05-31/webhook%2F..%2F..%2Fhealthz", headers=api.headers())
    assert dots.status_code == 400


def test_deliveries_and_redelivery_over_http(
    hcp: Hcp, receiver: Receiver, services: Services, tenant: TenantFixture
) -> None:
    created = ok(
        hcp.create(
            {
                "name": "d",
                "config": {"url": receiver.url, "hmac_key": "dk"},
                "subscriptions": [
                    {"events": [{"source": "hashicorp.packer.version", "action": "*"}]}
                ],
            }
        )
    )["webhook"]
    assert created["enabled"] is True
    first, second = emit(services, tenant, 2)
    drain(services, 2)
    name = hcp.resource_name("d")
    listed = ok(hcp.call("GET", hcp.path(name) + "/deliveries"))
    got = listed["deliveries"]
    assert [d["event_id"] for d in got] == [second, first]  # newest first
    newest = got[0]
    assert newest["webhook_resource_id"] == created["resource_id"]
    assert newest["request"]["payload"]["event_id"] == second
    assert newest["request"]["url"] == receiver.url
    assert newest["request"]["headers"]["X-HCP-Webhook-Signature"]
    assert newest["response"]["status_code"] == 200
    assert (newest["retries"], newest["state"], newest["attempts"]) == (0, "delivered", 1)
    paged = ok(
        hcp.call("GET", hcp.path(name) + "/deliveries", params={"pagination.page_size": "1"})
    )
    assert len(paged["deliveries"]) == 1 and paged["pagination"]["next_page_token"]
    t = tenant
    redeliver = (
        f"/packyard/2026-12-01/organizations/{t.organization_id}/projects/{t.project_id}"
        f"/webhooks/d/deliveries/{got[1]['id']}/redeliver"
    )
    again = ok(hcp.call("POST", redeliver))["delivery"]
    assert (again["state"], again["event_id"]) == ("queued", first)
    drain(services, 2)
    assert [r.json()["event_id"] for r in receiver.requests[1:]] == [first, second, first]
    assert ok(hcp.get(name))["webhook"]["last_delivery"]["event_id"] == first
    assert {d.state for d in deliveries(services)} == {"delivered"}
