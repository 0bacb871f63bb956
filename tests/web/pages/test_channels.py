"""A bucket's channels and one channel (history, assign, promote, restrict, delete), in a
real browser against a real server. Each test pushes its own bucket."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import Page

from tests.support.console import Seeded
from tests.web.conftest import check_page


@dataclass
class Bucket:
    """v1, v2, v3 (v3 revoked); channel prod serving v1."""

    name: str
    v1: dict[str, Any]
    v2: dict[str, Any]
    v3: dict[str, Any]


def bucket(console: Seeded) -> Bucket:
    api = console.api
    name = f"ch-{uuid.uuid4().hex[:8]}"
    api.create_bucket(name)
    v1, v2, v3 = (api.complete_version(name) for _ in range(3))
    api.ok(
        api.patch(
            f"/buckets/{name}/versions/{v3['fingerprint']}",
            {"revoke_in": "0s", "revocation_message": "Leaked key"},
        )
    )
    api.ok(
        api.post(
            f"/buckets/{name}/channels", {"name": "prod", "version_fingerprint": v1["fingerprint"]}
        )
    )
    return Bucket(name, v1, v2, v3)


def channel(console: Seeded, bucket: str, name: str) -> dict[str, Any] | None:
    answer = console.api.get(f"/buckets/{bucket}/channels/{name}")
    if answer.status_code == 404:
        return None
    found: dict[str, Any] = console.api.ok(answer)["channel"]
    return found


def fingerprint_of(found: dict[str, Any] | None) -> str | None:
    assert found is not None
    return None if found["version"] is None else str(found["version"]["fingerprint"])


def submit(page: Page, name: str) -> int:
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.get_by_role("button", name=name, exact=True).click()
    page.wait_for_load_state()
    return answer.value.status


def options(page: Page, label: str) -> list[str]:
    return (
        page.get_by_label(label, exact=True)
        .locator("option")
        .evaluate_all("options => options.map(o => o.value)")
    )


def test_the_channels_of_a_bucket_and_creating_them(admin: Page, console: Seeded) -> None:
    b = bucket(console)
    admin.goto(console.url("buckets", b.name, "channels"))
    table = admin.get_by_role("table", name=f"Channels of {b.name}")
    latest = table.get_by_role("row").filter(has_text="latest")
    assert latest.get_by_text("managed").is_visible()
    assert latest.get_by_text("restricted").is_visible()
    assert latest.get_by_role("link", name="v2").is_visible()  # v3 is revoked: latest went back
    prod = table.get_by_role("row").filter(has_text="prod")
    assert prod.get_by_role("link", name="v1").get_attribute("href") == (
        f"/p/{console.project_id}/buckets/{b.name}/versions/{b.v1['fingerprint']}"
    )
    assert "admin" in prod.inner_text()  # last assigned by
    # revoked versions are never offered
    offered = options(admin, "Version to serve (optional)")
    assert offered == ["", b.v2["fingerprint"], b.v1["fingerprint"]]
    check_page(admin, "channels")

    # a bad name is explained next to the field and nothing is created
    admin.get_by_label("Name", exact=False).first.fill("bad name!")
    assert submit(admin, "Create channel") == 400
    assert admin.locator("#create-name-error").is_visible()
    assert admin.locator("#create-name").input_value() == "bad name!"
    assert admin.locator("#create-name").get_attribute("aria-invalid") == "true"
    assert channel(console, b.name, "bad name!") is None

    # a duplicate name too
    admin.locator("#create-name").fill("prod")
    assert submit(admin, "Create channel") == 400
    assert "already exists" in admin.locator("#create-name-error").inner_text()

    # an open channel serving v2
    admin.locator("#create-name").fill("qa")
    admin.get_by_label("Version to serve (optional)").select_option(b.v2["fingerprint"])
    submit(admin, "Create channel")
    assert admin.url == console.url("buckets", b.name, "channels", "qa") + "?done=created"
    assert admin.get_by_role("status").is_visible()
    qa = channel(console, b.name, "qa")
    assert fingerprint_of(qa) == b.v2["fingerprint"] and qa and not qa.get("restricted")

    # a restricted, empty one
    admin.goto(console.url("buckets", b.name, "channels"))
    admin.locator("#create-name").fill("beta")
    admin.get_by_label("Restricted").check()
    submit(admin, "Create channel")
    beta = channel(console, b.name, "beta")
    assert beta is not None and beta["restricted"] is True and beta["version"] is None

    # ?version= preselects the version to serve
    admin.goto(console.url("buckets", b.name, "channels") + f"?version={b.v1['fingerprint']}")
    assert admin.get_by_label("Version to serve (optional)").input_value() == b.v1["fingerprint"]


def test_assign_promote_restrict_and_the_history(admin: Page, console: Seeded) -> None:
    b = bucket(console)
    here = console.url("buckets", b.name, "channels", "prod")
    admin.goto(here)
    assert admin.get_by_role("heading", name="prod").is_visible()
    assert b.v3["fingerprint"] not in options(admin, "Version")

    admin.get_by_label("Version", exact=True).select_option(b.v2["fingerprint"])
    submit(admin, "Assign")
    assert admin.url == here + "?done=assigned"
    assert fingerprint_of(channel(console, b.name, "prod")) == b.v2["fingerprint"]

    admin.get_by_label("Version", exact=True).select_option("")
    submit(admin, "Assign")
    assert admin.url == here + "?done=unassigned"
    assert fingerprint_of(channel(console, b.name, "prod")) is None
    admin.get_by_label("Version", exact=True).select_option(b.v1["fingerprint"])
    submit(admin, "Assign")

    # promote prod (v1) to a new channel
    console.api.ok(console.api.post(f"/buckets/{b.name}/channels", {"name": "live"}))
    admin.goto(console.url("buckets", b.name, "channels"))
    admin.get_by_label("From").select_option("prod")
    admin.get_by_label("To", exact=True).select_option("live")
    submit(admin, "Promote")
    assert admin.url == console.url("buckets", b.name, "channels", "live") + "?done=promoted"
    assert fingerprint_of(channel(console, b.name, "live")) == b.v1["fingerprint"]

    # restrict, then lift it
    admin.goto(here)
    submit(admin, "Restrict channel")
    assert admin.url == here + "?done=restricted"
    assert (channel(console, b.name, "prod") or {})["restricted"] is True
    submit(admin, "Remove restriction")
    assert admin.url == here + "?done=unrestricted"
    assert not (channel(console, b.name, "prod") or {}).get("restricted")

    # the timeline: every change, newest first, with its author
    entries = admin.locator("ol.channel-history > li")
    assert entries.count() == 4
    texts = entries.all_inner_texts()
    assert all("admin@localhost" in t for t in texts[:3])  # the first: by the API's principal
    assert texts[0].startswith("v1") and "from" in texts[0]
    assert texts[1].startswith("Unassigned")
    assert texts[2].startswith("v2") and "from v1" in texts[2]
    assert texts[3].startswith("v1") and "first assignment" in texts[3]
    check_page(admin, "channel")


def test_the_managed_latest_channel(admin: Page, console: Seeded) -> None:
    b = bucket(console)
    here = console.url("buckets", b.name, "channels", "latest")
    admin.goto(here)
    assert admin.get_by_role("button", name="Assign").count() == 0
    assert admin.get_by_role("button", name="Delete channel").count() == 0
    entries = admin.locator("ol.channel-history > li")
    assert entries.first.get_by_text("rolled back: v3 revoked").is_visible()
    assert "HCP Packer" in entries.first.inner_text()
    submit(admin, "Remove restriction")
    assert not (channel(console, b.name, "latest") or {}).get("restricted")
    submit(admin, "Restrict channel")
    assert (channel(console, b.name, "latest") or {})["restricted"] is True


def test_delete_a_channel_by_typing_its_name(admin: Page, console: Seeded) -> None:
    b = bucket(console)
    here = console.url("buckets", b.name, "channels", "prod")
    admin.goto(here)
    confirm = admin.get_by_label("Type prod to confirm")
    confirm.fill("pro")
    button = admin.get_by_role("button", name="Delete channel")
    assert button.is_disabled()
    button.evaluate("b => { b.disabled = false; }")
    assert submit(admin, "Delete channel") == 400
    assert admin.locator("#delete-confirm-error").is_visible()
    assert channel(console, b.name, "prod") is not None

    admin.get_by_label("Type prod to confirm").fill("prod")
    submit(admin, "Delete channel")
    assert admin.url == console.url("buckets", b.name, "channels") + "?done=deleted"
    assert channel(console, b.name, "prod") is None


def test_a_long_history_has_pages(admin: Page, console: Seeded) -> None:
    b = bucket(console)
    for n in range(30):
        target = b.v2 if n % 2 == 0 else b.v1
        console.api.ok(
            console.api.patch(
                f"/buckets/{b.name}/channels/prod",
                {"version_fingerprint": target["fingerprint"], "update_mask": "versionFingerprint"},
            )
        )
    admin.goto(console.url("buckets", b.name, "channels", "prod"))
    assert admin.locator("ol.channel-history > li").count() == 25
    admin.get_by_role("link", name="Next page").click()
    admin.wait_for_load_state()
    assert admin.locator("ol.channel-history > li").count() == 6
    assert (
        admin.locator("ol.channel-history > li").last.get_by_text("first assignment").is_visible()
    )
    assert admin.get_by_role("link", name="First page").is_visible()


def test_a_viewer_sees_no_forms_and_forged_posts_are_refused(viewer: Page, console: Seeded) -> None:
    b = bucket(console)
    console.api.ok(
        console.api.post(f"/buckets/{b.name}/channels", {"name": "hidden", "restricted": True})
    )
    viewer.goto(console.url("buckets", b.name, "channels"))
    names = viewer.get_by_role("table").locator("tbody th").all_inner_texts()
    assert [n.split()[0] for n in names] == ["prod"]  # latest and hidden are restricted
    assert viewer.get_by_role("button").filter(has_text="Create").count() == 0
    assert viewer.locator("main form").count() == 0

    viewer.goto(console.url("buckets", b.name, "channels", "prod"))
    assert viewer.locator("main form").count() == 0
    answer = viewer.goto(console.url("buckets", b.name, "channels", "hidden"))
    assert answer is not None and answer.status == 403

    token = viewer.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    channels = console.url("buckets", b.name, "channels")
    forged: dict[str, dict[str, str | float | bool]] = {
        channels: {"name": "sneaky"},
        channels + "/promote": {"from": "prod", "to": "prod"},
        channels + "/prod/assign": {"version": b.v2["fingerprint"]},
        channels + "/prod/restriction": {"restricted": "yes"},
        channels + "/prod/delete": {"confirm": "prod"},
    }
    for url, fields in forged.items():
        posted = viewer.request.post(url, form={"csrf_token": token, **fields}, max_redirects=0)
        assert posted.status == 403, url
    prod = channel(console, b.name, "prod")
    assert fingerprint_of(prod) == b.v1["fingerprint"] and prod and not prod.get("restricted")
    assert channel(console, b.name, "sneaky") is None


def test_a_post_without_its_csrf_token_is_refused(admin: Page, console: Seeded) -> None:
    b = bucket(console)
    channels = console.url("buckets", b.name, "channels")
    plain: tuple[tuple[str, dict[str, str | float | bool]], ...] = (
        (channels, {"name": "forged"}),
        (channels + "/prod/delete", {"confirm": "prod"}),
    )
    for url, fields in plain:
        posted = admin.request.post(url, form=fields, max_redirects=0)
        assert posted.status == 403, url
    assert channel(console, b.name, "forged") is None
    assert channel(console, b.name, "prod") is not None


def test_missing_things_are_404_pages(admin: Page, console: Seeded) -> None:
    answer = admin.goto(console.url("buckets", "no-such-bucket", "channels"))
    assert answer is not None and answer.status == 404
    answer = admin.goto(console.url("buckets", "ubuntu-base", "channels", "no-such-channel"))
    assert answer is not None and answer.status == 404
